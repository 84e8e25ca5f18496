"""A memory-keeping pause through the pinned Python SDK, against a server
whose E2B sandboxes run on gVisor (`[e2b] isolation = "gvisor"`): a
background command started before `pause()` (the SDK's default mode,
"full") is the same process after `Sandbox.connect()`, counting on from
where it was; files are kept; `pause(mode="filesystem")` still ends the
processes and keeps the files; a sandbox made to auto-resume is woken by a
request to a port its web server listens on, and the server answers (its
process survived), while a private one's port refuses a request without
the traffic token and stays paused. Prints a JSON summary as its last
line."""

import json
import sys
import time

import httpx
from e2b import Sandbox

from compat_util import RUN, SANDBOX_URL, check, wait_until

COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.t; mv /tmp/n.t /tmp/n; sleep 0.05; done"


def count(sbx):
    return int(sbx.files.read("/tmp/n").strip())


def full_pause(sbx):
    h = sbx.commands.run(COUNTER, background=True)
    sbx.files.write("kept.txt", "before the pause")
    wait_until("the counter counts", lambda: sbx.files.exists("/tmp/n"), seconds=10)
    before = count(sbx)
    check(sbx.pause() is True, "pause (default mode)")
    check(str(Sandbox.get_info(sbx.sandbox_id).state) == "paused", "paused")
    r = Sandbox.connect(sbx.sandbox_id, timeout=120)
    pids = [p.pid for p in r.commands.list()]
    check(h.pid in pids, f"the background command survived the pause: {h.pid} in {pids}")
    n1 = count(r)
    time.sleep(0.4)
    n2 = count(r)
    check(n1 >= before and n2 > n1, f"counting on from {before}: {n1}, then {n2}")
    check(r.files.read("kept.txt") == "before the pause", "the file written before the pause")
    # mode="full" explicitly, a second cycle.
    check(r.pause(mode="full") is True, "pause(mode='full')")
    r = Sandbox.connect(sbx.sandbox_id, timeout=120)
    check(h.pid in [p.pid for p in r.commands.list()], "alive after a second cycle")
    return r, h.pid


def filesystem_pause(r, pid):
    check(r.pause(mode="filesystem") is True, "pause(mode='filesystem')")
    back = Sandbox.connect(r.sandbox_id, timeout=120)
    check(pid not in [p.pid for p in back.commands.list()], "a filesystem pause ends processes")
    check(back.files.read("kept.txt") == "before the pause", "its files are kept")


def via_host(host, token=None):
    """GET /index.html by the host name get_host built."""
    headers = {"Host": host}
    if token:
        headers["e2b-traffic-access-token"] = token
    return httpx.get(SANDBOX_URL + "/index.html", headers=headers, timeout=60)


def port_wakes(_sbx):
    lifecycle = {"on_timeout": "pause", "auto_resume": True}
    for public in (True, False):
        w = Sandbox.create(timeout=120, metadata={"suite": RUN}, lifecycle=lifecycle,
                           network={"allow_public_traffic": public})
        try:
            w.files.write("/scratch/site/index.html", "served across a pause")
            w.commands.run("python3 -m http.server 8130 --bind 127.0.0.1 --directory /scratch/site",
                           background=True)
            host = w.get_host(8130)
            token = None if public else w.traffic_access_token
            wait_until("the web server answers", lambda: via_host(host, token).status_code == 200, 20)
            check(w.pause() is True, "pause")
            if not public:
                r = via_host(host)
                check(r.status_code != 200, f"a private port without its token: {r.status_code}")
                check(str(Sandbox.get_info(w.sandbox_id).state) == "paused",
                      "a request that may not reach its ports does not wake it")
            r = via_host(host, token)
            check(r.status_code == 200 and r.text == "served across a pause",
                  f"the request woke it and its server answered: {r.status_code} {r.text}")
            check(str(Sandbox.get_info(w.sandbox_id).state) == "running", "running again")
        finally:
            Sandbox.kill(w.sandbox_id)


def main():
    t0 = time.monotonic()
    passed, failed = [], {}
    sbx = Sandbox.create(timeout=120, metadata={"suite": RUN})
    try:
        for name, step in [("full pause keeps a process", lambda: full_pause(sbx)),
                           ("filesystem pause ends it", None),
                           ("port traffic wakes an auto-resuming sandbox", lambda: port_wakes(sbx))]:
            try:
                if step is None:
                    filesystem_pause(*kept)
                elif name.startswith("full"):
                    kept = step()
                else:
                    step()
                passed.append(name)
                print(f"[ok] {name}", flush=True)
            except Exception as e:  # noqa: BLE001 - reported, then the next
                failed[name] = f"{type(e).__name__}: {e}"
                print(f"[FAILED] {name}: {e}", flush=True)
                break
    finally:
        Sandbox.kill(sbx.sandbox_id)
    print(json.dumps({"sdk": "python", "passed": len(passed), "failed": failed,
                      "seconds": round(time.monotonic() - t0, 1)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
