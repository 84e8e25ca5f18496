"""The SDK's tests run against a real `warden serve` started by
crates/cli/tests/api/sdk_python.rs, which passes its address and keys:
WARDEN_URL, WARDEN_API_KEY (a tenant with secrets enabled and private
webhooks allowed), WARDEN_OTHER_TENANT_KEY."""

import os

import pytest

from warden_sdk import AsyncWarden, Warden


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through `cargo test -p warden-cli --test api sdk_python`")
    return value


@pytest.fixture
def w():
    with Warden(_env("WARDEN_URL"), _env("WARDEN_API_KEY")) as client:
        yield client


@pytest.fixture
def other():
    with Warden(_env("WARDEN_URL"), _env("WARDEN_OTHER_TENANT_KEY")) as client:
        yield client


@pytest.fixture
async def aw():
    async with AsyncWarden(_env("WARDEN_URL"), _env("WARDEN_API_KEY")) as client:
        yield client
