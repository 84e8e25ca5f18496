"""Shared by the E2B compatibility sections: the server's address and keys
(from the environment), this run's tag, and small assertion helpers whose
failures name their step."""

import os
import time
import uuid

API_URL = os.environ["E2B_API_URL"]
SANDBOX_URL = os.environ["E2B_SANDBOX_URL"]
API_KEY = os.environ["E2B_API_KEY"]
OTHER_KEY = os.environ["WARDEN_OTHER_TENANT_KEY"]
# Tags this run's sandboxes, so list filters see only them.
RUN = uuid.uuid4().hex[:12]
HOME = "/home/user"


class Failed(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def expect_raises(exc_types, what, fn, *args, **kwargs):
    """Calls fn and returns the exception it must raise (one of exc_types)."""
    try:
        got = fn(*args, **kwargs)
    except exc_types as e:
        return e
    except Exception as e:  # the wrong kind: report it
        raise Failed(f"{what}: expected {exc_types}, got {type(e).__name__}: {e}")
    raise Failed(f"{what}: expected {exc_types}, got a result: {got!r}")


def wait_until(what, cond, seconds=10.0, every=0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    raise Failed(f"{what}: not within {seconds} s")


def tiny_wheel(name, value):
    """A pure-Python wheel of one module, `name.VALUE == value`, for `pip
    install --no-index` (the sandboxes have no index to reach)."""
    import io
    import zipfile
    w = io.BytesIO()
    with zipfile.ZipFile(w, "w") as z:
        z.writestr(f"{name}/__init__.py", f"VALUE = {value!r}\n")
        z.writestr(f"{name}-0.1.dist-info/METADATA",
                   f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        z.writestr(f"{name}-0.1.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: warden\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{name}-0.1.dist-info/RECORD", "")
    return w.getvalue()
