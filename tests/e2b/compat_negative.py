"""The E2B compatibility script's negative cases: a wrong API key, another
tenant's sandbox, a wrong envd access token, an unknown Connect method.
Raw HTTP (httpx) only where the SDK has no public way to make the request."""

import httpx
from packaging.version import Version

from e2b import (
    AuthenticationException,
    ConnectionConfig,
    NotFoundException,
    Sandbox,
    SandboxQuery,
)

from compat_util import API_KEY, API_URL, OTHER_KEY, RUN, SANDBOX_URL, check, expect_raises


def wrong_api_key(s, _sbx):
    bad = "e2b_" + "0" * 40
    expect_raises(AuthenticationException, "create with a wrong key", Sandbox.create, api_key=bad)
    expect_raises(AuthenticationException, "list with a wrong key",
                  Sandbox.list(api_key=bad).next_items)


def other_tenant(s, sbx):
    sid = sbx.sandbox_id
    expect_raises(NotFoundException, "connect with the other tenant's key",
                  Sandbox.connect, sid, api_key=OTHER_KEY)
    expect_raises(NotFoundException, "get_info with the other tenant's key",
                  Sandbox.get_info, sid, api_key=OTHER_KEY)
    check(Sandbox.kill(sid, api_key=OTHER_KEY) is False, "kill by the other tenant: not False")
    theirs = Sandbox.list(api_key=OTHER_KEY, query=SandboxQuery(metadata={"suite": RUN}))
    check(theirs.next_items() == [], "the other tenant lists this tenant's sandboxes")
    check(sbx.is_running(), "sandbox survived the other tenant's kill")


def envd_token(sid):
    """The envd access token, from the REST connect call the SDK makes."""
    r = httpx.post(f"{API_URL}/v2/sandboxes/{sid}/connect",
                   headers={"X-API-Key": API_KEY}, json={"timeout": 120})
    check(r.status_code in (200, 201), f"REST connect: {r.status_code} {r.text}")
    return r.json()["envdAccessToken"]


def connect_rpc(sid, token, method, body=None):
    headers = {"Content-Type": "application/json", "Connect-Protocol-Version": "1",
               "E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49983"}
    if token is not None:
        headers["X-Access-Token"] = token
    return httpx.post(f"{SANDBOX_URL}/{method}", headers=headers, json=body or {})


def wrong_access_token(s, sbx):
    sid = sbx.sandbox_id
    # The SDK's own client with a tampered token (the public constructor).
    cfg = ConnectionConfig(extra_sandbox_headers={
        "E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "49983", "X-Access-Token": "tampered"})
    bad = Sandbox(sandbox_id=sid, sandbox_domain=None, envd_version=Version("0.5.7"),
                  envd_access_token="tampered", connection_config=cfg)
    expect_raises(AuthenticationException, "commands.run with a bad token",
                  bad.commands.run, "true")
    expect_raises(AuthenticationException, "files.read with a bad token",
                  bad.files.read, "/scratch/relative.txt")
    good = envd_token(sid)
    check(connect_rpc(sid, good, "process.Process/List").status_code == 200, "List, good token")
    other = s.sandbox(metadata={"suite": RUN}, timeout=60)
    for token, what in [("tampered", "bad"), (None, "no"), (envd_token(other.sandbox_id),
                                                            "another sandbox's")]:
        r = connect_rpc(sid, token, "process.Process/List")
        check(r.status_code == 401 and r.json().get("code") == "unauthenticated",
              f"{what} token: {r.status_code} {r.text}")
    other.kill()


def unknown_method(s, sbx):
    token = envd_token(sbx.sandbox_id)
    for method in ["process.Process/NoSuchMethod", "filesystem.Filesystem/NoSuchMethod"]:
        r = connect_rpc(sbx.sandbox_id, token, method)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        # Connect maps `unimplemented` to HTTP 501; a plain 404 for an
        # unknown route also reads as `unimplemented` to Connect clients.
        check(r.status_code in (404, 501) and body.get("code") == "unimplemented",
              f"{method}: {r.status_code} {r.text}")
