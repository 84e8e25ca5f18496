#!/usr/bin/env python3
"""Warden's E2B front door driven through the official Python SDK (e2b 2.63.0).

Every call the E2B compatibility issue lists goes through the SDK's public
API, unchanged: the SDK finds the server through E2B_API_URL and
E2B_SANDBOX_URL (both the `warden serve` address) and authenticates with
E2B_API_KEY (a Warden tenant key). WARDEN_OTHER_TENANT_KEY is a second
tenant's key, for the isolation checks. Raw HTTP (httpx, which the SDK
depends on) is used only where the SDK offers no public way to make the
request: a Connect call with a bad access token, and an unknown method.

Each section runs on its own, so one run reports every gap; a failure names
its step. The last line printed is a JSON summary; the exit code is 1 if any
section failed.
"""

import asyncio
import hashlib
import json
import os
import sys
import time
import traceback

import httpx
from packaging.version import Version

from e2b import (
    AsyncSandbox,
    CommandExitException,
    FileNotFoundException,
    FilesystemEventType,
    FileType,
    InvalidArgumentException,
    NotFoundException,
    PtySize,
    Sandbox,
    SandboxException,
    SandboxQuery,
    SandboxState,
)

from compat_negative import other_tenant, unknown_method, wrong_access_token, wrong_api_key
from compat_snapshots import snapshots
from compat_volumes import volumes
from compat_util import (HOME, RUN, SANDBOX_URL, Failed, check, expect_raises, tiny_wheel,
                         wait_until)


class Suite:
    def __init__(self):
        self.passed, self.failed, self.live = [], {}, []

    def sandbox(self, **kw):
        """Sandbox.create, remembered for the final cleanup."""
        sbx = Sandbox.create(**kw)
        self.live.append(sbx.sandbox_id)
        return sbx

    def run(self, name, fn, *args):
        t0 = time.monotonic()
        try:
            fn(*args)
            self.passed.append(name)
            status = "ok"
        except Exception as e:
            self.failed[name] = f"{type(e).__name__}: {e}"
            status = "FAILED"
            traceback.print_exc()
        print(f"[{status}] {name} ({time.monotonic() - t0:.2f} s)", flush=True)

    def cleanup(self):
        for sid in self.live:
            try:
                Sandbox.kill(sid)
            except Exception:
                pass


def create_with_metadata_and_envs(s, sbx):
    check(sbx.sandbox_id, "create: no sandbox id")
    r = sbx.commands.run("echo $WARDEN_E2B_ENV")
    check(r.stdout == "from-create\n", f"create envs: visible in a command: {r.stdout!r}")
    r = sbx.commands.run('echo "$WARDEN_E2B_ENV $PER_CMD"', envs={"PER_CMD": "per-command"})
    check(r.stdout == "from-create per-command\n", f"run envs: {r.stdout!r}")
    info = sbx.get_info()
    check(info.sandbox_id == sbx.sandbox_id, f"get_info: id {info.sandbox_id}")
    check(info.metadata.get("suite") == RUN and info.metadata.get("role") == "main",
          f"get_info: metadata {info.metadata}")
    check(info.started_at < info.end_at, f"get_info: started {info.started_at} end {info.end_at}")
    check(str(info.state.value if hasattr(info.state, "value") else info.state) == "running",
          f"get_info: state {info.state}")
    check(Version(info.envd_version) >= Version("0.1.0"), f"get_info: envd {info.envd_version}")
    check(sbx.is_running(), "is_running: False for a live sandbox")


def paths_and_user(s, sbx):
    r = sbx.commands.run('pwd; echo "$HOME"; id -u; id -un')
    check(r.stdout == f"{HOME}\n{HOME}\n1001\nuser\n", f"default cwd/home/user: {r.stdout!r}")
    check(sbx.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n", "run cwd=/tmp")
    sbx.commands.run("touch /tmp/w && touch /scratch/w")
    info = sbx.files.write("relative.txt", "rel")
    check(info.path == f"{HOME}/relative.txt", f"relative write path: {info.path}")
    check(sbx.commands.run(f"cat {HOME}/relative.txt").stdout == "rel", "relative write content")
    check(sbx.files.read("relative.txt") == "rel", "relative read")
    info = sbx.files.get_info("relative.txt")
    check((info.owner, info.group) == ("user", "user"), f"owner of a new file: {info}")


def pty(s, sbx):
    # An interactive shell on a terminal: typed input, a resize the shell
    # sees, its exit; and a kill.
    h = sbx.pty.create(PtySize(rows=30, cols=100), timeout=30)
    sbx.pty.send_stdin(h.pid, b"tty; stty size\n")
    time.sleep(1.0)  # the first `stty size` runs before the resize
    sbx.pty.resize(h.pid, PtySize(rows=40, cols=120))
    sbx.pty.send_stdin(h.pid, b"stty size; exit 7\n")
    got = []
    e = expect_raises(CommandExitException, "pty exit 7", h.wait,
                      on_pty=lambda d: got.append(bytes(d)))
    out = b"".join(got).decode(errors="replace")
    check(e.exit_code == 7, f"pty exit code {e.exit_code}")
    check("/dev/pts/" in out, f"pty: no terminal: {out!r}")
    check("30 100" in out and "40 120" in out, f"pty sizes: {out!r}")
    k = sbx.pty.create(PtySize(rows=24, cols=80), timeout=30)
    check(sbx.pty.kill(k.pid) is True, "pty kill")
    wait_until("killed pty leaves commands.list",
               lambda: all(p.pid != k.pid for p in sbx.commands.list()))


def writable_root(s, sbx):
    # E2B sandboxes are machines of their own: `user` installs with pip
    # (into ~/.local: the system's packages belong to root), `python` is
    # there, and root's part of the tree is root's.
    sbx.files.write("wardentiny-0.1-py3-none-any.whl", tiny_wheel("wardentiny", 42))
    r = sbx.commands.run("python3 -m pip install --no-index wardentiny-0.1-py3-none-any.whl"
                         " && python -c 'import wardentiny; print(wardentiny.VALUE)'")
    check(r.stdout.strip().endswith("42"), f"pip install as user: {r.stdout!r} {r.stderr!r}")
    check(sbx.files.exists(f"{HOME}/.local/lib"), "pip installed into ~/.local")
    e = expect_raises(CommandExitException, "user writes /usr/local",
                      sbx.commands.run, "touch /usr/local/x")
    check("Permission denied" in e.stderr, f"/usr/local as user: {e.stderr!r}")
    sbx.commands.run("mkdir -p ~/work/app && cd ~/work/app && echo ok > f")
    check(sbx.files.read("work/app/f") == "ok\n", "a project under the home")


def foreground_callbacks(s, sbx):
    events = []
    t0 = time.monotonic()
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done"
    r = sbx.commands.run(
        script,
        on_stdout=lambda d: events.append(("out", d, time.monotonic())),
        on_stderr=lambda d: events.append(("err", d, time.monotonic())),
    )
    done = time.monotonic()
    check(r.exit_code == 0, f"exit code {r.exit_code}")
    check(r.stdout == "out1\nout2\nout3\n", f"result stdout {r.stdout!r}")
    check(r.stderr == "err1\nerr2\nerr3\n", f"result stderr {r.stderr!r}")
    out = "".join(d for k, d, _ in events if k == "out")
    err = "".join(d for k, d, _ in events if k == "err")
    check(out == r.stdout and err == r.stderr, f"callbacks saw {out!r} / {err!r}")
    # Streamed, not buffered to the end: the first line arrived while the
    # command still had ~0.6 s to run.
    first = events[0][2] - t0 if events else float("nan")
    check(events and events[0][2] < done - 0.4,
          f"first output after {first:.2f} s, command done after {done - t0:.2f} s")
    # Both streams of round i come before anything of round i+1.
    order = [line for _, d, _ in events for line in d.split()]
    rounds = [int(w[-1]) for w in order]
    check(rounds == sorted(rounds), f"output order across streams: {order}")


def exit_codes(s, sbx):
    e = expect_raises(CommandExitException, "exit 3", sbx.commands.run, "exit 3")
    check(e.exit_code == 3, f"exit_code {e.exit_code}")
    e = expect_raises(CommandExitException, "stderr + exit 7", sbx.commands.run,
                      "echo partial; echo oops >&2; exit 7")
    check((e.exit_code, e.stderr, e.stdout) == (7, "oops\n", "partial\n"),
          f"CommandExitException fields: {e.exit_code} {e.stderr!r} {e.stdout!r}")
    e = expect_raises(CommandExitException, "missing binary", sbx.commands.run,
                      "no-such-command-xyz")
    check(e.exit_code == 127, f"missing binary exit_code {e.exit_code}")
    h = sbx.commands.run("sleep 0.2; exit 4", background=True)
    e = expect_raises(CommandExitException, "background wait", h.wait)
    check(e.exit_code == 4, f"background exit_code {e.exit_code}")


def background_connect_kill_list(s, sbx):
    h = sbx.commands.run("echo first; sleep 0.5; echo second", background=True)
    check(h.pid > 0, f"pid {h.pid}")
    r = h.wait()
    check(r.stdout == "first\nsecond\n", f"background output {r.stdout!r}")

    h = sbx.commands.run("sleep 1; echo after-connect; sleep 60", background=True)
    pid = h.pid
    h.disconnect()
    procs = {p.pid: p for p in sbx.commands.list()}
    check(pid in procs, f"commands.list: {pid} not in {list(procs)}")
    check(procs[pid].cmd == "/bin/bash" and "sleep 60" in procs[pid].args[-1],
          f"commands.list entry: {procs[pid]}")
    seen = []
    h2 = sbx.commands.connect(pid)
    check(h2.pid == pid, f"connect pid {h2.pid}")
    for out, _, _ in h2:
        if out:
            seen.append(out)
            break
    check(seen == ["after-connect\n"], f"output after connect: {seen}")
    check(sbx.commands.kill(pid) is True, "commands.kill: not True")
    e = expect_raises(CommandExitException, "wait on a killed command", h2.wait)
    check(e.exit_code != 0, f"killed exit_code {e.exit_code}")
    wait_until("killed command leaves commands.list",
               lambda: pid not in [p.pid for p in sbx.commands.list()], 5)
    check(sbx.commands.kill(pid) is False, "commands.kill of a gone pid: not False")
    expect_raises(NotFoundException, "commands.connect to a gone pid", sbx.commands.connect, pid)
    expect_raises(NotFoundException, "send_stdin to a gone pid", sbx.commands.send_stdin, pid, "x")
    # A handle's own kill().
    h3 = sbx.commands.run("sleep 60", background=True)
    check(h3.kill() is True, "handle.kill: not True")
    expect_raises(CommandExitException, "wait after handle.kill", h3.wait)


def stdin(s, sbx):
    h = sbx.commands.run("cat; echo done", background=True, stdin=True)
    sbx.commands.send_stdin(h.pid, "hello\n")
    sbx.commands.send_stdin(h.pid, b"\x62ytes\n")
    sbx.commands.close_stdin(h.pid)
    r = h.wait()
    check(r.stdout == "hello\nbytes\ndone\n", f"stdin echoed {r.stdout!r}")
    h = sbx.commands.run("head -n1", background=True, stdin=True)
    h.send_stdin("line\n")
    check(h.wait().stdout == "line\n", "handle.send_stdin")


def files_text_and_bytes(s, sbx):
    f = sbx.files
    info = f.write("/scratch/d/a.txt", "héllo\n")
    check((info.name, info.path, info.type) == ("a.txt", "/scratch/d/a.txt", FileType.FILE),
          f"write info {info}")
    check(f.read("/scratch/d/a.txt") == "héllo\n", "read text")
    check(bytes(f.read("/scratch/d/a.txt", format="bytes")) == "héllo\n".encode(), "read bytes")
    blob = bytes(range(256)) * 4
    f.write("/tmp/bin.dat", blob)
    check(bytes(f.read("/tmp/bin.dat", format="bytes")) == blob, "bytes round trip")
    r = sbx.commands.run("sha256sum /tmp/bin.dat")
    check(r.stdout.split()[0] == hashlib.sha256(blob).hexdigest(), "bytes as written")


def files_large(s, sbx):
    big = os.urandom(20 * 1024 * 1024)
    digest = hashlib.sha256(big).hexdigest()
    t0 = time.monotonic()
    sbx.files.write("/scratch/big.bin", big)
    up = time.monotonic() - t0
    r = sbx.commands.run("sha256sum /scratch/big.bin")
    check(r.stdout.split()[0] == digest, "20 MiB upload hash")
    t0 = time.monotonic()
    back = sbx.files.read("/scratch/big.bin", format="bytes")
    down = time.monotonic() - t0
    check(len(back) == len(big) and hashlib.sha256(back).hexdigest() == digest,
          f"20 MiB download: {len(back)} bytes")
    print(f"  20 MiB: write {up:.2f} s, read {down:.2f} s")
    sbx.files.remove("/scratch/big.bin")


def files_ops(s, sbx):
    f = sbx.files
    check(f.make_dir("/scratch/ops") is True, "make_dir: not True")
    check(f.make_dir("/scratch/ops") is False, "make_dir of an existing dir: not False")
    check(f.make_dir("/scratch/ops/x/y") is True, "make_dir with parents")
    f.write("/scratch/ops/one.txt", "1")
    f.write("/scratch/ops/x/two.txt", "22")
    names = {e.name: e for e in f.list("/scratch/ops")}
    check(set(names) == {"one.txt", "x"}, f"list: {sorted(names)}")
    check(names["one.txt"].type == FileType.FILE and names["one.txt"].size == 1,
          f"list entry: {names['one.txt']}")
    check(names["x"].type == FileType.DIR, f"list dir entry: {names['x']}")
    deep = {e.path for e in f.list("/scratch/ops", depth=3)}
    check({"/scratch/ops/x/two.txt", "/scratch/ops/x/y"} <= deep, f"list depth=3: {sorted(deep)}")
    check(f.exists("/scratch/ops/one.txt") is True, "exists: file")
    check(f.exists("/scratch/ops/none") is False, "exists: missing")
    info = f.get_info("/scratch/ops/x/two.txt")
    check((info.name, info.path, info.type, info.size) ==
          ("two.txt", "/scratch/ops/x/two.txt", FileType.FILE, 2), f"get_info: {info}")
    check(info.permissions.endswith("rw-r--r--") and info.mode & 0o777 == 0o644,
          f"get_info mode: {info}")
    check(abs(info.modified_time.timestamp() - time.time()) < 120, f"mtime {info.modified_time}")
    moved = f.rename("/scratch/ops/one.txt", "/scratch/ops/uno.txt")
    check((moved.name, moved.path) == ("uno.txt", "/scratch/ops/uno.txt"), f"rename: {moved}")
    check(not f.exists("/scratch/ops/one.txt") and f.read("/scratch/ops/uno.txt") == "1",
          "rename: old gone, new readable")
    f.remove("/scratch/ops/uno.txt")
    check(not f.exists("/scratch/ops/uno.txt"), "remove file")
    f.remove("/scratch/ops")
    check(not f.exists("/scratch/ops"), "remove directory tree")
    f.remove("/scratch/ops")  # as E2B: removing what is not there is a no-op
    expect_raises(FileNotFoundException, "read missing", f.read, "/scratch/none.txt")
    expect_raises(NotFoundException, "get_info missing", f.get_info, "/scratch/none.txt")


def metadata(s, sbx):
    f = sbx.files
    meta = {"author": "mish", "purpose": "upload"}
    info = f.write("/scratch/meta.txt", "m", metadata=meta)
    check(info.metadata == meta, f"write answers the metadata: {info.metadata}")
    check(f.get_info("/scratch/meta.txt").metadata == meta, "get_info has it")
    info = f.write("/scratch/meta-o.txt", "m", metadata={"k": "v"}, use_octet_stream=True)
    check(info.metadata == {"k": "v"}, f"octet-stream upload: {info.metadata}")
    listed = {e.name: e.metadata for e in f.list("/scratch")}
    check(listed.get("meta.txt") == meta, f"list has it: {listed}")
    check(f.rename("/scratch/meta.txt", "/scratch/meta2.txt").metadata == meta, "kept by rename")
    check(f.write("/scratch/meta2.txt", "again").metadata is None, "an overwrite clears it")
    check(f.get_info("/scratch/meta2.txt").metadata is None, "cleared on disk too")
    # The same thing as the sandbox's own xattrs under user.e2b.
    sbx.commands.run("python3 -c \"import os; os.setxattr('/scratch/meta-o.txt', "
                     "'user.e2b.set_inside', b'yes')\"")
    check(f.get_info("/scratch/meta-o.txt").metadata == {"k": "v", "set_inside": "yes"},
          "an xattr set in the sandbox")
    # Past what a stat carries back (4 KiB): refused, not cut.
    expect_raises(InvalidArgumentException, "metadata over 4 KiB", f.write,
                  "/scratch/big.txt", "x", metadata={"big": "x" * 5000})
    check(not f.exists("/scratch/big.txt"), "nothing written for a refused upload")
    # Watch events carry the entry when asked (envd 0.6.3); a new file reads
    # as envd's upload: created, its mode set, written.
    f.make_dir("/scratch/w-entry")
    h = f.watch_dir("/scratch/w-entry", include_entry=True, allow_network_mounts=True)
    f.write("/scratch/w-entry/e.txt", "1", metadata={"tag": "w"})
    seen = []
    wait_until("three events for a new file",
               lambda: (seen.extend(h.get_new_events()), len(seen) >= 3)[1], 5)
    check([e.type for e in seen] == [FilesystemEventType.CREATE, FilesystemEventType.CHMOD,
                                     FilesystemEventType.WRITE], f"events: {seen}")
    entry = seen[-1].entry
    check(entry is not None and entry.path == "/scratch/w-entry/e.txt"
          and entry.metadata == {"tag": "w"}, f"the entry: {entry}")
    h.stop()


def watch(s, sbx):
    f = sbx.files
    f.make_dir("/scratch/watched")
    h = f.watch_dir("/scratch/watched")
    f.write("/scratch/watched/f.txt", "1")
    sbx.commands.run("echo more >> /scratch/watched/f.txt")
    f.remove("/scratch/watched/f.txt")
    seen = []

    def got_all():
        seen.extend(h.get_new_events())
        kinds = {e.type for e in seen if e.name == "f.txt"}
        return {FilesystemEventType.CREATE, FilesystemEventType.WRITE,
                FilesystemEventType.REMOVE} <= kinds

    wait_until(f"watch events (seen {seen})", got_all, 5)
    kinds = [e.type for e in seen if e.name == "f.txt"]
    check(kinds.index(FilesystemEventType.CREATE) < kinds.index(FilesystemEventType.REMOVE),
          f"event order {kinds}")
    h.stop()
    expect_raises(NotFoundException, "watch_dir of a missing directory", f.watch_dir,
                  "/scratch/no-such-dir")


def connect_by_id(s, sbx):
    sbx.files.write("/scratch/shared.txt", "shared")
    again = Sandbox.connect(sbx.sandbox_id)
    check(again.sandbox_id == sbx.sandbox_id, "connect: id")
    check(again.files.read("/scratch/shared.txt") == "shared", "connect: same filesystem")
    check(again.commands.run("echo $WARDEN_E2B_ENV").stdout == "from-create\n", "connect: envs")


def list_filters_and_pages(s, _sbx):
    ids = {s.sandbox(metadata={"suite": RUN, "group": "list"}, timeout=120).sandbox_id
           for _ in range(3)}
    p = Sandbox.list(query=SandboxQuery(metadata={"suite": RUN, "group": "list"}), limit=2)
    first = p.next_items()
    check(len(first) == 2 and p.has_next, f"page 1: {len(first)} items, has_next {p.has_next}")
    second = p.next_items()
    check(len(second) == 1 and not p.has_next, f"page 2: {len(second)}, has_next {p.has_next}")
    got = {i.sandbox_id for i in first + second}
    check(got == ids, f"listed {got} != created {ids}")
    check(all(i.metadata.get("group") == "list" for i in first + second), "listed metadata")
    none = Sandbox.list(query=SandboxQuery(metadata={"suite": RUN, "group": "nope"})).next_items()
    check(none == [], f"non-matching filter: {none}")
    for sid in ids:
        check(Sandbox.kill(sid) is True, f"kill {sid}")


def timeout_and_expiry(s, sbx):
    sbx.set_timeout(60)
    left = sbx.get_info().end_at.timestamp() - time.time()
    check(50 < left <= 65, f"set_timeout(60): end_at in {left:.1f} s")
    short = s.sandbox(metadata={"suite": RUN}, timeout=60)
    short.set_timeout(2)
    t0 = time.monotonic()
    wait_until("expired sandbox: is_running False", lambda: not short.is_running(), 10, 0.25)
    print(f"  expired {time.monotonic() - t0:.1f} s after set_timeout(2)")
    expect_raises(NotFoundException, "get_info of an expired sandbox",
                  Sandbox.get_info, short.sandbox_id)


def kill(s, _sbx):
    sbx = s.sandbox(metadata={"suite": RUN}, timeout=60)
    check(sbx.kill() is True, "kill: not True")
    check(sbx.is_running() is False, "is_running after kill")
    check(Sandbox.kill(sbx.sandbox_id) is False, "second kill: not False")
    expect_raises(NotFoundException, "get_info after kill", Sandbox.get_info, sbx.sandbox_id)
    expect_raises(NotFoundException, "connect after kill", Sandbox.connect, sbx.sandbox_id)


def metrics_and_pause(s, sbx):
    m = sbx.get_metrics()
    check(m and m[-1].cpu_count >= 1 and m[-1].mem_total >= m[-1].mem_used > 0,
          f"get_metrics: {m}")
    # `mode="full"` is E2B's default (`memory: true`): a native sandbox
    # cannot keep its memory, so it keeps its files, as a plain pause().
    f = s.sandbox(timeout=120)
    f.files.write("full.txt", "kept")
    boot = f.files.read("/proc/sys/kernel/random/boot_id")
    check(f.pause(mode="full") is True, "pause(mode='full') of a native sandbox")
    check(str(Sandbox.get_info(f.sandbox_id).state) == "paused", "paused")
    back = Sandbox.connect(f.sandbox_id, timeout=60)
    check(back.files.read("full.txt") == "kept", "its files after the pause")
    # It booted again (E2B's sign of a resume from files, not memory).
    check(back.files.read("/proc/sys/kernel/random/boot_id") != boot, "a new boot id")
    back.kill()
    # A pause keeps the files; connect resumes the sandbox under its id.
    p = s.sandbox(timeout=120)
    p.files.write("kept.txt", "before the pause")
    p.commands.run("sleep 600", background=True)
    check(p.pause() is True, "pause")
    check(str(Sandbox.get_info(p.sandbox_id).state) == "paused", "get_info of a paused sandbox")
    check(p.pause() is False, "a second pause: False (already paused)")
    paused = [x.sandbox_id for x in Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED])).next_items()]
    check(p.sandbox_id in paused, f"listed as paused: {paused}")
    r = Sandbox.connect(p.sandbox_id, timeout=60)
    check(r.sandbox_id == p.sandbox_id, "resumed under its id")
    check(r.files.read("kept.txt") == "before the pause", "the file written before the pause")
    out = r.commands.run("pgrep -x sleep || echo none")
    check(out.stdout == "none\n", f"its processes ended with the pause: {out.stdout!r}")
    check(r.is_running(), "running after connect")
    r.kill()
    # lifecycle on_timeout "pause": the timeout pauses it, connect resumes.
    t = s.sandbox(timeout=2, lifecycle={"on_timeout": "pause"})
    t.files.write("t.txt", "kept at the timeout")
    wait_until("paused at its timeout",
               lambda: str(Sandbox.get_info(t.sandbox_id).state) == "paused", seconds=30)
    r = Sandbox.connect(t.sandbox_id, timeout=60)
    check(r.files.read("t.txt") == "kept at the timeout", "the file kept at the timeout")
    r.kill()
    # auto_resume: the next envd call wakes a paused sandbox by itself.
    w = s.sandbox(timeout=60, lifecycle={"on_timeout": "pause", "auto_resume": True})
    check(Sandbox.get_info(w.sandbox_id).lifecycle["auto_resume"] is True, "lifecycle shows auto_resume")
    w.files.write("w.txt", "woken by traffic")
    check(w.pause() is True, "pause of an auto-resuming sandbox")
    check(str(Sandbox.get_info(w.sandbox_id).state) == "paused", "paused until a request comes")
    check(w.files.read("w.txt") == "woken by traffic", "an envd call resumes it and is answered")
    check(str(Sandbox.get_info(w.sandbox_id).state) == "running", "running again")
    w.kill()
    # fork: copies that start with the source's files (not its processes).
    f = s.sandbox(timeout=60)
    f.files.write("f.txt", "to fork")
    forks = f.fork(count=2, timeout=60)
    check(len(forks) == 2 and all(isinstance(x, Sandbox) for x in forks), f"two forks: {forks}")
    for x in forks:
        s.live.append(x.sandbox_id)
        check(x.sandbox_id != f.sandbox_id, "a fork has an id of its own")
        check(x.files.read("f.txt") == "to fork", "a fork has the source's file")
        x.files.write("f.txt", "changed in the fork")
        x.kill()
    check(f.files.read("f.txt") == "to fork", "the source keeps its own file")
    f.kill()


def async_api(s, _sbx):
    async def go():
        sbx = await AsyncSandbox.create(metadata={"suite": RUN}, envs={"A": "async"}, timeout=60)
        s.live.append(sbx.sandbox_id)
        chunks = []
        r = await sbx.commands.run("echo $A", on_stdout=chunks.append)
        check(r.stdout == "async\n" and chunks == ["async\n"], f"async run {r.stdout!r} {chunks}")
        await sbx.files.make_dir("/scratch/aw")
        events = []
        h = await sbx.files.watch_dir("/scratch/aw", on_event=events.append)
        await sbx.files.write("/scratch/aw/n.txt", b"x")
        check(await sbx.files.read("/scratch/aw/n.txt") == "x", "async read")
        for _ in range(50):
            if any(e.name == "n.txt" and e.type == FilesystemEventType.CREATE for e in events):
                break
            await asyncio.sleep(0.1)
        else:
            raise Failed(f"async watch_dir (streaming): no create event, got {events}")
        await h.stop()
        try:
            await sbx.files.watch_dir("/scratch/none", on_event=events.append)
            raise Failed("streaming watch_dir of a missing directory: no error")
        except NotFoundException:
            pass
        check(await sbx.kill() is True, "async kill")

    asyncio.run(go())


def serve_dir(sbx, port, text):
    """Starts a web server in the sandbox, serving `text` as /index.html."""
    sbx.files.write(f"/scratch/site{port}/index.html", text)
    sbx.commands.run(f"python3 -m http.server {port} --bind 127.0.0.1 "
                     f"--directory /scratch/site{port}", background=True)


def via_host(host, token=None):
    """GET / by the host name get_host built, sent to the server as wildcard
    DNS for its domain would send it."""
    headers = {"Host": host}
    if token:
        headers["e2b-traffic-access-token"] = token
    return httpx.get(SANDBOX_URL + "/index.html", headers=headers, timeout=5)


def ports(s, sbx):
    serve_dir(sbx, 8123, "hello from the sandbox")
    host = sbx.get_host(8123)
    check(host.startswith(f"8123-{sbx.sandbox_id}."), f"get_host: {host}")
    check("e2b" not in host.split(".", 1)[1], f"get_host names E2B's domain: {host}")
    wait_until("the sandbox's server through get_host",
               lambda: via_host(host).text == "hello from the sandbox", 20)
    # Public by default; private asks for the traffic token.
    private = s.sandbox(metadata={"suite": RUN}, timeout=120,
                        network={"allow_public_traffic": False})
    token = private.traffic_access_token
    check(bool(token), "a private sandbox's traffic_access_token")
    serve_dir(private, 8124, "private")
    phost = private.get_host(8124)
    wait_until("the private server with its token",
               lambda: via_host(phost, token).text == "private", 20)
    check(via_host(phost).status_code == 403, "a private port without the token")
    check(via_host(phost, "et_forged").status_code == 403, "a private port, forged token")
    closed = via_host(sbx.get_host(8125))
    check(closed.status_code == 502 and "port is not open" in closed.text,
          f"a closed port: {closed.status_code} {closed.text}")


def killed_mid_command(s, _sbx):
    """A command whose sandbox is killed under it fails saying so."""
    import threading
    victim = s.sandbox(metadata={"suite": RUN}, timeout=120)
    threading.Timer(1.0, lambda: Sandbox.kill(victim.sandbox_id)).start()
    e = expect_raises(SandboxException, "a command whose sandbox is killed",
                      victim.commands.run, "sleep 30")
    check("killed" in str(e), f"told it was killed: {type(e).__name__}: {e}")


def symlinks(s, sbx):
    """get_info of a link tells where it leads, as envd does."""
    sbx.commands.run("mkdir -p ln-test && echo hi > ln-test/t.txt && cd ln-test && "
                     "ln -sf t.txt l.txt && ln -sf /nowhere dangling && cd .. && "
                     "ln -sfn ln-test ln-dir")
    pwd = sbx.commands.run("pwd").stdout.strip()
    # envd marks the link (is_symlink, which this SDK shows as SYMLINK) and
    # names where it leads, resolved in the sandbox.
    f = sbx.files.get_info("ln-test/l.txt")
    check(f.type == FileType.SYMLINK, f"a link to a file: {f.type}")
    check(f.symlink_target == f"{pwd}/ln-test/t.txt", f"its target: {f.symlink_target}")
    d = sbx.files.get_info("ln-dir")
    check(d.type == FileType.SYMLINK and d.symlink_target == f"{pwd}/ln-test",
          f"a link to a directory: {d.type} {d.symlink_target}")
    g = sbx.files.get_info("ln-test/dangling")
    check(g.symlink_target is None, f"a dangling link: {g.symlink_target}")


def signed_urls(s, sbx):
    """download_url / upload_url: signed, no token needed; the sandbox named
    by envd's host name under a wildcard domain, or found from the
    signature when the URL names none (E2B_SANDBOX_URL)."""
    from urllib.parse import urlencode
    from e2b.sandbox.signature import get_signature

    sbx.files.write("/scratch/signed.txt", "signed content")
    envd_host = {"Host": sbx.get_host(49983)}
    url = sbx.download_url("/scratch/signed.txt")
    check("signature=v1_" in url, f"download_url is signed: {url}")
    r = httpx.get(url, headers=envd_host, timeout=5)
    check(r.status_code == 200 and r.text == "signed content",
          f"signed download: {r.status_code} {r.text[:200]}")
    # As the SDK made it, against E2B_SANDBOX_URL: the signature alone
    # finds its sandbox.
    r = httpx.get(url, timeout=5)
    check(r.status_code == 200 and r.text == "signed content",
          f"signed download without a host name: {r.status_code} {r.text[:200]}")
    check(httpx.get(url.replace("signed.txt", "other.txt"), timeout=5).status_code == 401,
          "without a host name, a signature for another path")
    timed = sbx.download_url("/scratch/signed.txt", use_signature_expiration=60)
    check(httpx.get(timed, headers=envd_host, timeout=5).text == "signed content",
          "signed download with an expiry")
    # Another path, an expired signature, an upload with a download's
    # signature: all refused.
    other = url.replace("signed.txt", "other.txt")
    check(httpx.get(other, headers=envd_host, timeout=5).status_code == 401,
          "a signature for another path")
    old = get_signature("/scratch/signed.txt", "read", None, sbx._envd_access_token, -10)
    expired = SANDBOX_URL + "/files?" + urlencode({
        "path": "/scratch/signed.txt", "signature": old["signature"],
        "signature_expiration": old["expiration"]})
    check(httpx.get(expired, headers=envd_host, timeout=5).status_code == 401,
          "an expired signature")
    up = sbx.upload_url("/scratch/uploaded.txt")
    r = httpx.post(up, headers=envd_host, files={"file": ("uploaded.txt", b"via a signed url")},
                   timeout=5)
    check(r.status_code == 200, f"signed upload: {r.status_code} {r.text[:200]}")
    check(sbx.files.read("/scratch/uploaded.txt") == "via a signed url", "the uploaded file")
    r = httpx.post(url, headers=envd_host, files={"file": ("x.txt", b"x")}, timeout=5)
    check(r.status_code == 401, f"an upload with a download's signature: {r.status_code}")


def main():
    s = Suite()
    t0 = time.monotonic()
    try:
        main_sbx = s.sandbox(metadata={"suite": RUN, "role": "main"},
                             envs={"WARDEN_E2B_ENV": "from-create"}, timeout=300)
    except Exception as e:
        traceback.print_exc()
        s.failed["create"] = f"{type(e).__name__}: {e}"
        main_sbx = None
    sections = [
        ("create with metadata and envs, get_info", create_with_metadata_and_envs),
        ("paths: home /home/user, cwd, user, relative paths", paths_and_user),
        ("writable root: pip install, python, root's tree", writable_root),
        ("pty: typed input, resize, exit code, kill", pty),
        ("foreground run with on_stdout/on_stderr", foreground_callbacks),
        ("exit codes and CommandExitException", exit_codes),
        ("background, commands.connect/kill/list", background_connect_kill_list),
        ("stdin: send_stdin, close_stdin", stdin),
        ("files: text and bytes", files_text_and_bytes),
        ("files: 20 MiB round trip", files_large),
        ("files: list/make_dir/exists/get_info/rename/remove", files_ops),
        ("files: watch_dir (polling)", watch),
        ("files: metadata (X-Metadata-*, user.e2b.* xattrs), watch entries", metadata),
        ("Sandbox.connect(id)", connect_by_id),
        ("Sandbox.list: metadata filter, pagination", list_filters_and_pages),
        ("set_timeout and expiry", timeout_and_expiry),
        ("ports: get_host, public and private traffic", ports),
        ("download_url / upload_url: signed, with expiry", signed_urls),
        ("get_info of symlinks", symlinks),
        ("a command cut by a kill says so", killed_mid_command),
        ("volumes: Volume.create/list/get_info/destroy, volume_mounts", volumes),
        ("snapshots: create_snapshot, Sandbox.create(snapshot), list, delete", snapshots),
        ("kill", kill),
        ("get_metrics; pause (full: files where memory cannot be kept), connect resumes", metrics_and_pause),
        ("negative: wrong API key", wrong_api_key),
        ("negative: another tenant's sandbox", other_tenant),
        ("negative: wrong envd access token", wrong_access_token),
        ("negative: unknown Connect method", unknown_method),
        ("async API: run, streaming watch_dir, kill", async_api),
    ]
    if main_sbx is not None:
        for name, fn in sections:
            s.run(name, fn, s, main_sbx)
    s.cleanup()
    summary = {"sdk": "python", "e2b": "2.63.0", "passed": len(s.passed),
               "failed": s.failed, "seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(summary))
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
