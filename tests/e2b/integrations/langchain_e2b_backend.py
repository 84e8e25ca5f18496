#!/usr/bin/env python3
"""langchain-e2b, the E2B sandbox backend of LangChain's Deep Agents, against
Warden with its defaults: an agent's tools (execute, read, write, edit, ls,
glob, grep, upload, download) as the agent would call them, on a sandbox
made by the e2b SDK the integration pins. Only the URLs and the key are
Warden's (E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY).

Last line: a JSON summary as the other compatibility scripts print; exit
code 1 if any check failed.
"""

import json
import sys
import time

import e2b
from langchain_e2b import E2BSandbox

passed, failed = [], {}


def check(cond, what):
    (passed.append(what) if cond else failed.__setitem__(what, "failed"))
    print(("[ok] " if cond else "[FAILED] ") + what)


def main():
    t0 = time.monotonic()
    sbx = e2b.Sandbox.create()
    try:
        b = E2BSandbox(sandbox=sbx)
        r = b.execute("echo hi && pwd && id -un")
        check(r.exit_code == 0 and r.output.split() == ["hi", "/home/user", "user"],
              f"execute in E2B's layout: {r}")
        r = b.execute("exit 3")
        check(r.exit_code == 3, f"a failing command's exit code: {r}")
        w = b.write("/home/user/notes/a.txt", "line one\nline two\n")
        check(w.error is None, f"write (a new directory too): {w}")
        rd = b.read("/home/user/notes/a.txt")
        check(rd.error is None and "line two" in rd.file_data["content"], f"read: {rd}")
        e = b.edit("/home/user/notes/a.txt", "line two", "line 2")
        check(e.error is None and e.occurrences == 1, f"edit: {e}")
        check("line 2" in b.execute("cat /home/user/notes/a.txt").output, "the edit is in the file")
        ls = b.ls("/home/user/notes")
        check([x["path"] for x in ls.entries] == ["/home/user/notes/a.txt"], f"ls: {ls}")
        g = b.glob("**/*.txt", "/home/user")
        check([x["path"] for x in g.matches] == ["notes/a.txt"], f"glob: {g}")
        gr = b.grep("line 2", "/home/user")
        check([(x["path"], x["line"]) for x in gr.matches] == [("/home/user/notes/a.txt", 2)],
              f"grep: {gr}")
        up = b.upload_files([("/home/user/data.bin", b"\x00\x01binary")])
        check(all(u.error is None for u in up), f"upload: {up}")
        dn = b.download_files(["/home/user/data.bin", "/home/user/missing"])
        check(dn[0].content == b"\x00\x01binary" and dn[1].error == "file_not_found",
              f"download, and a missing file: {dn}")
        outside = b.write("/tmp/agent/scratch.txt", "x")
        check(outside.error is None and b.read("/tmp/agent/scratch.txt").error is None,
              f"a write outside the home: {outside}")
        t = b.execute("sleep 5", timeout=1)
        check(t.exit_code == 124, f"a command past its timeout: {t}")
        again = E2BSandbox(sandbox=e2b.Sandbox.connect(b.id))
        check(again.execute("cat notes/a.txt").exit_code == 0, "the same sandbox by its id")
    finally:
        sbx.kill()
    print(json.dumps({"integration": "langchain-e2b", "passed": len(passed), "failed": failed,
                      "seconds": round(time.monotonic() - t0, 1)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
