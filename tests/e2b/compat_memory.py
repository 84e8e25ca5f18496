"""A memory-keeping pause through the pinned Python SDK, against a server
whose E2B sandboxes run on gVisor (`[e2b] isolation = "gvisor"`): a
background command started before `pause()` (the SDK's default mode,
"full") is the same process after `Sandbox.connect()`, counting on from
where it was; files are kept; `pause(mode="filesystem")` still ends the
processes and keeps the files. Prints a JSON summary as its last line."""

import json
import sys
import time

from e2b import Sandbox

from compat_util import RUN, check, wait_until

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


def main():
    t0 = time.monotonic()
    passed, failed = [], {}
    sbx = Sandbox.create(timeout=120, metadata={"suite": RUN})
    try:
        for name, step in [("full pause keeps a process", lambda: full_pause(sbx)),
                           ("filesystem pause ends it", None)]:
            try:
                if step is not None:
                    kept = step()
                else:
                    filesystem_pause(*kept)
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
