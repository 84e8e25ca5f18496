#!/usr/bin/env python3
"""Sandbox.create() -> commands.run("true") -> kill() through the official E2B
Python SDK against `warden serve` on loopback, p50/p99, next to the same cycle
through Warden's native /v1 API (httpx, one pooled client) in the same run:

- native, /bin/true: the baseline (what the sandbox itself costs);
- native, bash -l -c true: what the SDK asks for (it runs every command as
  `/bin/bash -l -c CMD`), so the gap to the SDK row is the E2B layer (REST
  control API, Connect streaming, access tokens) and the SDK's own client
  work, not the login shell.

The contenders take turns round by round, so machine noise spreads evenly.
Reads E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY; prints figures, asserts
nothing but that every cycle succeeded. Run by `warden bench e2b`
(`make bench-e2b`), which starts the server.
"""

import argparse
import os
import statistics
import sys
import time

import httpx
from importlib.metadata import version

from e2b import Sandbox


def pct(v, p):
    s = sorted(v)
    return s[round((len(s) - 1) * p)]


def sdk_cycle():
    t0 = time.perf_counter()
    sbx = Sandbox.create()
    t1 = time.perf_counter()
    r = sbx.commands.run("true")
    t2 = time.perf_counter()
    if r.exit_code != 0:
        raise RuntimeError(f"true exited {r.exit_code}")
    if sbx.kill() is not True:
        raise RuntimeError(f"kill {sbx.sandbox_id}: not True")
    t3 = time.perf_counter()
    return t3 - t0, (t1 - t0, t2 - t1, t3 - t2)


def native_cycle(http, argv):
    t0 = time.perf_counter()
    r = http.post("/v1/sandboxes", json={})
    r.raise_for_status()
    sid = r.json()["id"]
    r = http.post(f"/v1/sandboxes/{sid}/exec", json={"command": argv})
    r.raise_for_status()
    if r.json().get("exit_code") != 0:
        raise RuntimeError(f"{argv} failed: {r.text}")
    http.delete(f"/v1/sandboxes/{sid}").raise_for_status()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    http = httpx.Client(
        base_url=os.environ["E2B_API_URL"],
        headers={"Authorization": f"Bearer {os.environ['E2B_API_KEY']}"},
        timeout=60,
    )
    contenders = {
        "native /v1, /bin/true (baseline)": lambda: native_cycle(http, ["/bin/true"]),
        "native /v1, bash -l -c true": lambda: native_cycle(http, ["/bin/bash", "-l", "-c", "true"]),
        "E2B Python SDK": lambda: sdk_cycle()[0],
    }
    for _ in range(args.warmup):
        for fn in contenders.values():
            fn()
    times = {name: [] for name in contenders}
    phases = []
    for i in range(args.rounds):
        times["native /v1, /bin/true (baseline)"].append(
            contenders["native /v1, /bin/true (baseline)"]())
        times["native /v1, bash -l -c true"].append(contenders["native /v1, bash -l -c true"]())
        total, split = sdk_cycle()
        times["E2B Python SDK"].append(total)
        phases.append(split)
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{args.rounds} rounds", file=sys.stderr, flush=True)

    ms = lambda s: s * 1e3  # noqa: E731
    print(f'create -> run "true" -> kill on loopback ({args.rounds} rounds, {args.warmup} '
          f'warm-up; e2b {version("e2b")}, Python {sys.version.split()[0]})')
    for name, v in times.items():
        print(f"{name:<36} p50 {ms(pct(v, 0.5)):>7.2f} ms   p99 {ms(pct(v, 0.99)):>7.2f} ms")
    for k, label in enumerate(["Sandbox.create()", 'commands.run("true")', "kill()"]):
        v = [p[k] for p in phases]
        print(f"  SDK {label:<31} p50 {ms(pct(v, 0.5)):>7.2f} ms   p99 {ms(pct(v, 0.99)):>7.2f} ms")
    base = statistics.median(times["native /v1, /bin/true (baseline)"])
    bash = statistics.median(times["native /v1, bash -l -c true"])
    sdk = statistics.median(times["E2B Python SDK"])
    print(f"SDK / baseline (p50)                 {sdk / base:.2f}x")
    print(f"SDK / native with the same command   {sdk / bash:.2f}x")


if __name__ == "__main__":
    main()
