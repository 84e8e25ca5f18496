import signal

import pytest

from warden_sdk import CommandDenied, Conflict, Limits, NotFound, Unauthorized, Warden, allowlist


def test_create_with_files_exec_and_delete(w):
    f = w.files.upload("scores.csv", "name,score\na,1\nb,2\n")
    with w.sandboxes.create(files=[f], labels={"suite": "sdk"}, limits=Limits(memory_mb=256), timeout=120) as sb:
        assert sb.info.state == "running"
        assert sb.info.labels == {"suite": "sdk"}
        r = sb.exec("wc -l < /input/scores.csv")
        assert r.ok and r.stdout.strip() == "3"
        r = sb.exec(["sh", "-c", "echo out; echo err >&2; exit 7"])
        assert (r.exit_code, r.stdout, r.stderr) == (7, "out\n", "err\n")
        r = sb.exec("cat", stdin="fed through stdin")
        assert r.stdout == "fed through stdin"
        r = sb.exec("sleep 5", timeout=0.5)
        assert r.timed_out and r.exit_code is None
        assert any(s.id == sb.id for s in w.sandboxes.list(labels={"suite": "sdk"}))
    with pytest.raises(Conflict):
        sb.exec("true")
    assert w.sandboxes.get(sb.id).info.state == "stopped"


def test_streamed_exec_delivers_output_as_it_comes(w):
    with w.sandboxes.create() as sb:
        seen = []
        r = sb.exec("for i in 1 2 3; do echo line $i; sleep 0.2; done; echo done >&2",
                    on_stdout=seen.append, on_stderr=seen.append)
        assert r.ok and r.stdout == "line 1\nline 2\nline 3\n" and r.stderr == "done\n"
        assert "".join(seen).count("line") == 3 and len(seen) >= 3, seen


def test_background_process_with_stdin_signals_and_wait(w):
    with w.sandboxes.create() as sb:
        p = sb.spawn("read a; echo got $a; read b; echo got $b", stdin=True)
        p.send_stdin("one\n")
        p.send_stdin("two\n", close=True)
        assert p.wait().exit_code == 0
        out = b"".join(d for s, d in p.output() if s == "stdout")
        assert out == b"got one\ngot two\n"

        sleeper = sb.spawn("sleep 60")
        assert any(x["pid"] == sleeper.pid for x in sb.processes())
        sleeper.signal("TERM")
        assert sleeper.wait().signal == signal.SIGTERM


def test_files_inside_the_sandbox(w):
    with w.sandboxes.create() as sb:
        sb.files.mkdir("/scratch/a/b")
        st = sb.files.write("/scratch/a/b/data.bin", bytes(range(256)), mode=0o600)
        assert st.size == 256 and st.mode & 0o777 == 0o600
        assert sb.files.read("/scratch/a/b/data.bin") == bytes(range(256))
        assert [e.name for e in sb.files.list("/scratch/a/b")] == ["data.bin"]
        assert sb.files.stat("/scratch/a").kind == "dir"
        sb.files.remove("/scratch/a", recursive=True)
        with pytest.raises(NotFound):
            sb.files.stat("/scratch/a")


def test_timeout_and_network_allowlist(w):
    with w.sandboxes.create(network=allowlist("example.invalid")) as sb:
        assert sb.info.network["mode"] == "allowlist"
        before = sb.info.expires_at
        assert sb.set_timeout(3600).expires_at > before
        assert list(sb.egress()) == []


def test_errors_are_typed_and_carry_the_code(w, other):
    with w.sandboxes.create() as sb:
        with pytest.raises(NotFound) as e:
            other.sandboxes.get(sb.id)
        assert e.value.status == 404 and e.value.code == "not_found"
        assert all(s.id != sb.id for s in other.sandboxes.list())
    f = w.files.upload("mine.txt", b"private")
    with pytest.raises(NotFound):
        other.files.read(f.id)
    with pytest.raises(NotFound):
        other.sandboxes.create(files=[f])
    with pytest.raises(Unauthorized) as e:
        Warden(w.url, "wk_nope.nope").sandboxes.create()
    assert e.value.code == "unauthorized"


def test_the_command_policy_refusal_is_its_own_type(w):
    with w.sandboxes.create() as sb:
        with pytest.raises(CommandDenied) as e:
            sb.exec("touch /scratch/forbidden")
        assert e.value.status == 403 and "forbidden" in e.value.message
        assert sb.exec("test -e /scratch/forbidden").exit_code == 1


def test_secrets_reach_the_sandbox_masked(w):
    w.secrets.set("SDK_TOKEN", "s3cr3t-value-123")
    assert "SDK_TOKEN" in [s.name for s in w.secrets.list()]
    with w.sandboxes.create(secrets=["SDK_TOKEN"]) as sb:
        r = sb.exec('echo "$SDK_TOKEN"; test "$SDK_TOKEN" = s3cr3t-value-123')
        assert r.ok and r.stdout == "***\n"
    w.secrets.set("SDK_TOKEN", "another-value-456", replace=True)
    w.secrets.delete("SDK_TOKEN")
    with pytest.raises(NotFound):
        w.secrets.delete("SDK_TOKEN")


def test_audit_and_usage(w):
    with w.sandboxes.create() as sb:
        sb.exec("true")
    entries = [e for e in w.audit() if e.target.split(":")[0] == sb.id]
    assert [e.action for e in entries] == ["sandbox.create", "sandbox.exec", "sandbox.delete"], entries
    assert entries[1].target.startswith(f"{sb.id}:")
    seqs = [e.seq for e in w.audit()]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    assert [e.seq for e in w.audit(after=seqs[-2])] == seqs[-1:]
    u = w.usage()
    assert u.sandboxes >= 1 and u.wall_seconds > 0
