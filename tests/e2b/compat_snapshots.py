"""The E2B compatibility script's snapshot section: `create_snapshot`,
`list_snapshots`, `Sandbox.create(<snapshot>)` and `delete_snapshot`
through the SDK, unchanged, on Warden's filesystem snapshots."""

from e2b import Sandbox, SandboxException

from compat_util import HOME, OTHER_KEY, RUN, check, expect_raises, tiny_wheel


def snapshots(s, _sbx):
    src = s.sandbox(timeout=120)
    # A project, a package installed with pip, a file in /tmp.
    src.files.write("proj/main.py", "print('from the snapshot')\n")
    src.files.write("snaptiny-0.1-py3-none-any.whl", tiny_wheel("snaptiny", 7))
    src.commands.run("python3 -m pip install -q --no-index snaptiny-0.1-py3-none-any.whl"
                     " && rm snaptiny-0.1-py3-none-any.whl && echo t > /tmp/t.txt && chmod 700 proj")
    name = f"compat-{RUN}"[:63]
    info = src.create_snapshot(name=name)
    check(info.snapshot_id.startswith("snp_"), f"create_snapshot: {info.snapshot_id}")
    check(info.names == [name], f"create_snapshot names: {info.names}")
    check(src.is_running(), "the source keeps running")
    e = expect_raises(SandboxException, "a memory snapshot", src.create_snapshot, mode="full")
    check("filesystem" in str(e), f"the refusal says what Warden takes: {e}")
    try:
        listed = [x.snapshot_id for x in Sandbox.list_snapshots(sandbox_id=src.sandbox_id).next_items()]
        check(info.snapshot_id in listed, f"list_snapshots(sandbox_id): {listed}")
        # Two sandboxes from it, by id and by name: each has the files.
        for template in (info.snapshot_id, name):
            new = s.sandbox(template=template, timeout=60)
            out = new.commands.run("python3 proj/main.py && python3 -c 'import snaptiny; "
                                   "print(snaptiny.VALUE)' && cat /tmp/t.txt && pwd")
            check(out.stdout == f"from the snapshot\n7\nt\n{HOME}\n",
                  f"a sandbox from {template}: {out.stdout!r} {out.stderr!r}")
            mode = new.commands.run("stat -c %a proj").stdout.strip()
            check(mode == "700", f"the project's mode: {mode!r}")
            new.kill()
        # Another tenant can neither start from it nor list or delete it.
        expect_raises(Exception, "the other tenant starts from the snapshot", Sandbox.create,
                      template=info.snapshot_id, timeout=30, api_key=OTHER_KEY)
        other = [x.snapshot_id for x in Sandbox.list_snapshots(api_key=OTHER_KEY).next_items()]
        check(info.snapshot_id not in other, "the other tenant lists the snapshot")
        check(Sandbox.delete_snapshot(info.snapshot_id, api_key=OTHER_KEY) is False,
              "the other tenant deleted the snapshot")
    finally:
        check(Sandbox.delete_snapshot(info.snapshot_id) is True, "delete_snapshot")
        src.kill()
    check(Sandbox.delete_snapshot(info.snapshot_id) is False, "a second delete_snapshot: not False")
