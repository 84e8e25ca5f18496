"""The SDK's cost over raw HTTP: sandbox create -> exec "true" -> delete,
through ``warden_sdk.Warden`` and through plain ``httpx`` calls of the same
three requests, the two taking turns in one process. Run by ``warden bench
sdk`` (WARDEN_URL, WARDEN_API_KEY); prints p50/p90 of each and the ratio."""

import argparse
import os
import statistics
import time

import httpx

from warden_sdk import Warden


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    a = ap.parse_args()
    url, key = os.environ["WARDEN_URL"], os.environ["WARDEN_API_KEY"]
    raw = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    w = Warden(url, key)

    def http_cycle():
        sb = raw.post("/v1/sandboxes", json={}).json()["id"]
        r = raw.post(f"/v1/sandboxes/{sb}/exec", json={"command": ["true"]}).json()
        assert r["exit_code"] == 0
        assert raw.delete(f"/v1/sandboxes/{sb}").status_code == 204

    def sdk_cycle():
        sb = w.sandboxes.create()
        assert sb.exec(["true"]).exit_code == 0
        sb.delete()

    times = {"http": [], "sdk": []}
    for i in range(a.warmup + a.rounds):
        for name, fn in (("http", http_cycle), ("sdk", sdk_cycle)) if i % 2 else (("sdk", sdk_cycle), ("http", http_cycle)):
            t0 = time.perf_counter()
            fn()
            if i >= a.warmup:
                times[name].append((time.perf_counter() - t0) * 1000)
    h, s = statistics.median(times["http"]), statistics.median(times["sdk"])
    print(f"python  raw HTTP (httpx)  p50 {h:7.2f} ms  p90 {pct(times['http'], 0.9):7.2f} ms")
    print(f"python  warden_sdk        p50 {s:7.2f} ms  p90 {pct(times['sdk'], 0.9):7.2f} ms")
    print(f"python  SDK / raw HTTP    {s / h:.3f}x  ({a.rounds} cycles each, taking turns)")


if __name__ == "__main__":
    main()
