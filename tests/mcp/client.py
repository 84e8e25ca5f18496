"""Warden's MCP server through the official MCP Python SDK as a real client,
on both transports: streamable HTTP at /mcp (the 2026 per-request protocol
and the older initialize handshake) and `warden mcp` on stdio (both
modes). Run by crates/cli/tests/api/mcp.rs against a fresh server; the
last line of output is a JSON summary {"passed": N, "failed": {...}}.

Environment: WARDEN_URL, WARDEN_API_KEY (the main tenant, whose command
policy denies "*touch /scratch/forbidden*"), WARDEN_OTHER_TENANT_KEY,
WARDEN_QUOTA_KEY (a tenant allowed one sandbox), WARDEN_BIN (`warden`).
"""

import asyncio
import base64
import json
import os
import sys
import traceback

import httpx2
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

URL = os.environ["WARDEN_URL"]
KEY = os.environ["WARDEN_API_KEY"]
OTHER_KEY = os.environ["WARDEN_OTHER_TENANT_KEY"]
QUOTA_KEY = os.environ["WARDEN_QUOTA_KEY"]
BIN = os.environ["WARDEN_BIN"]

TOOLS = {
    "create_sandbox", "run_command", "run_code", "list_sandboxes", "destroy_sandbox",
    "list_uploaded_files", "upload_file", "read_file", "write_file", "list_directory",
    "submit_review", "get_review", "read_review_output",
}
# The smallest PNG: one transparent pixel.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Failed(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def text(r):
    return "".join(c.text for c in r.content if getattr(c, "type", "") == "text")


def server(how, key=KEY):
    """A server argument for Client: /mcp with the key, or `warden mcp`."""
    if how == "http":
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=180)
        return streamable_http_client(URL + "/mcp", http_client=http)
    env = {"WARDEN_URL": URL, "WARDEN_API_KEY": key, "PATH": os.environ.get("PATH", "")}
    return StdioServerParameters(command=BIN, args=["mcp"], env=env)


async def call(c, name, args, ok=True):
    r = await c.call_tool(name, args)
    if ok is not None:
        check(bool(r.is_error) != ok, f"{name}({args}) is_error={r.is_error}: {text(r)[:2000]}")
    return r


async def tools_describe_themselves(c):
    tools = (await c.list_tools()).tools
    names = {t.name for t in tools}
    check(names == TOOLS, f"tools: {sorted(names)}")
    for t in tools:
        check(len(t.description or "") > 40, f"{t.name} has a description for a model")
        schema = t.input_schema if hasattr(t, "input_schema") else t.inputSchema
        check(schema.get("type") == "object", f"{t.name} schema: {schema}")
    run = next(t for t in tools if t.name == "run_command")
    schema = run.input_schema if hasattr(run, "input_schema") else run.inputSchema
    check(set(schema["required"]) == {"sandbox_id", "command"}, f"run_command required: {schema}")
    check("description" in schema["properties"]["command"], "argument descriptions")


async def sandbox_round_trip(c, tag):
    """Upload, create with the upload, run, write, read, list, destroy."""
    csv = "name,score\n" + "".join(f"p{i},{i}\n" for i in range(10))
    up = json.loads(text(await call(c, "upload_file", {"name": f"scores-{tag}.csv", "content": csv})))
    listed = json.loads(text(await call(c, "list_uploaded_files", {})))
    check(any(f["file_id"] == up["file_id"] for f in listed), f"upload listed: {listed}")

    made = json.loads(text(await call(c, "create_sandbox", {"file_ids": [up["file_id"]]})))
    sb = made["sandbox_id"]
    check(made["inputs"] == [f"/input/scores-{tag}.csv"], f"inputs: {made}")
    try:
        r = text(await call(c, "run_command", {"sandbox_id": sb, "command": f"wc -l < /input/scores-{tag}.csv"}))
        check(r.startswith("exit code 0") and "\n11\n" in r + "\n", f"wc: {r!r}")
        r = text(await call(c, "run_command", {"sandbox_id": sb, "command": "echo out; echo err >&2; exit 3"}))
        check(r.startswith("exit code 3") and "--- stdout ---\nout" in r and "--- stderr ---\nerr" in r, r)

        # Long output keeps its start and end, within the bound.
        r = text(await call(c, "run_command", {"sandbox_id": sb, "command": "seq 1 200000"}))
        check("bytes left out" in r and "\n1\n" in r and r.rstrip().endswith("200000"), r[-200:])
        check(len(r) < 20000, f"bounded output: {len(r)} chars")

        # A file in a directory that does not exist yet, run, read, listed.
        await call(c, "write_file", {"sandbox_id": sb, "path": "/scratch/app/main.py",
                                     "content": "print(sum(range(10)))\n"})
        r = text(await call(c, "run_command", {"sandbox_id": sb, "command": "python3 main.py", "cwd": "/scratch/app"}))
        check(r.startswith("exit code 0") and "45" in r, r)
        r = text(await call(c, "read_file", {"sandbox_id": sb, "path": "/scratch/app/main.py"}))
        check(r == "print(sum(range(10)))\n", repr(r))
        r = text(await call(c, "list_directory", {"sandbox_id": sb, "path": "/scratch/app"}))
        check("main.py  file  22 bytes" in r, r)

        # An image comes back as an image; other binary is described.
        await call(c, "write_file", {"sandbox_id": sb, "path": "/scratch/dot.png",
                                     "content": base64.b64encode(PNG).decode(), "encoding": "base64"})
        r = await call(c, "read_file", {"sandbox_id": sb, "path": "/scratch/dot.png"})
        imgs = [x for x in r.content if x.type == "image"]
        check(len(imgs) == 1 and base64.b64decode(imgs[0].data) == PNG, f"image: {r.content}")
        check(imgs[0].mime_type == "image/png" if hasattr(imgs[0], "mime_type") else imgs[0].mimeType == "image/png", "png")
        await call(c, "run_command", {"sandbox_id": sb, "command": "head -c 4096 /dev/urandom > /scratch/blob"})
        r = text(await call(c, "read_file", {"sandbox_id": sb, "path": "/scratch/blob"}))
        check("not text" in r and "4096 bytes" in r, r)

        # Refusals are tool errors the model can read, with the reason.
        r = text(await call(c, "write_file", {"sandbox_id": sb, "path": f"/input/scores-{tag}.csv", "content": "x"}, ok=False))
        check("read-only" in r.lower() or "permission" in r.lower() or "denied" in r.lower(), r)
        r = text(await call(c, "read_file", {"sandbox_id": sb, "path": "/scratch/app"}, ok=False))
        check("list_directory" in r, r)
        r = text(await call(c, "run_command", {"sandbox_id": sb, "command": "touch /scratch/forbidden"}, ok=False))
        check("denied" in r or "policy" in r, f"policy: {r}")
        r = text(await call(c, "run_command", {"sandbox_id": sb, "command": "test -e /scratch/forbidden; echo $?"}))
        check(r.startswith("exit code 0") and "\n1" in r, f"the denied command never ran: {r}")

        listed = json.loads(text(await call(c, "list_sandboxes", {})))
        check(any(s["sandbox_id"] == sb for s in listed), f"list_sandboxes: {listed}")
    finally:
        r = text(await call(c, "destroy_sandbox", {"sandbox_id": sb}))
        check("destroyed" in r, r)
    r = text(await call(c, "run_command", {"sandbox_id": sb, "command": "true"}, ok=False))
    check("conflict" in r or "not_found" in r, f"after destroy: {r}")
    return sb, up["file_id"]


async def other_tenant_is_walled_off(how, sb_live, file_id):
    async with Client(server(how, OTHER_KEY)) as o:
        r = text(await call(o, "run_command", {"sandbox_id": sb_live, "command": "id"}, ok=False))
        check(r.startswith("not_found"), f"another tenant's sandbox: {r}")
        r = text(await call(o, "read_file", {"sandbox_id": sb_live, "path": "/etc/hostname"}, ok=False))
        check(r.startswith("not_found"), f"another tenant's file: {r}")
        r = text(await call(o, "create_sandbox", {"file_ids": [file_id]}, ok=False))
        check("not_found" in r, f"another tenant's upload: {r}")
        listed = json.loads(text(await call(o, "list_uploaded_files", {})))
        check(listed == [], f"the other tenant sees no uploads: {listed}")


async def quota_applies(how):
    async with Client(server(how, QUOTA_KEY)) as q:
        first = json.loads(text(await call(q, "create_sandbox", {})))
        try:
            r = text(await call(q, "create_sandbox", {}, ok=False))
            check("quota" in r, f"second sandbox over max_sandboxes=1: {r}")
        finally:
            await call(q, "destroy_sandbox", {"sandbox_id": first["sandbox_id"]})


async def code_runs_statefully(c):
    made = json.loads(text(await call(c, "create_sandbox", {"image": "python-data"})))
    sb = made["sandbox_id"]
    try:
        r = await call(c, "run_code", {"sandbox_id": sb, "code": "x = 21\nprint('set')"})
        check("set" in text(r), text(r))
        r = text(await call(c, "run_code", {"sandbox_id": sb, "code": "x * 2"}))
        check("[result] 42" in r, r)
        r = await call(c, "run_code", {"sandbox_id": sb, "code":
                                       
                                       "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"})
        imgs = [x for x in r.content if x.type == "image"]
        check(len(imgs) == 1 and base64.b64decode(imgs[0].data)[:8] == PNG[:8], f"figure: {r.content}")
        r = text(await call(c, "run_code", {"sandbox_id": sb, "code": "1 / 0"}, ok=False))
        check("ZeroDivisionError" in r, r)
    finally:
        await call(c, "destroy_sandbox", {"sandbox_id": sb})


async def review_runs_to_its_results(c):
    up = json.loads(text(await call(c, "upload_file", {"name": "notes.txt", "content": "alpha\nbeta\n"})))
    job = json.loads(text(await call(c, "submit_review", {
        "file_ids": [up["file_id"]],
        "command": "wc -l /input/notes.txt | tee /output/report.txt; echo done-printing",
    })))
    got = json.loads(text(await call(c, "get_review", {"review_id": job["review_id"], "wait_secs": 120})))
    check(got["status"] == "succeeded" and got["exit_code"] == 0, f"review: {got}")
    check(any(o["path"] == "report.txt" for o in got["outputs"]), f"outputs: {got}")
    check("done-printing" in got["log_tail"], f"log tail: {got}")
    r = text(await call(c, "read_review_output", {"review_id": job["review_id"], "path": "report.txt"}))
    check(r.startswith("2 /input/notes.txt"), repr(r))
    r = text(await call(c, "read_review_output", {"review_id": job["review_id"], "path": "nope.txt"}, ok=False))
    check("report.txt" in r, f"a missing output names those there are: {r}")


async def bad_keys_are_refused():
    async with httpx2.AsyncClient(timeout=30) as h:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        hdrs = {"Accept": "application/json, text/event-stream"}
        r = await h.post(URL + "/mcp", json=body, headers=hdrs)
        check(r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer", f"no key: {r.status_code}")
        r = await h.post(URL + "/mcp", json=body, headers={**hdrs, "Authorization": "Bearer wk_nope.nope"})
        check(r.status_code == 401, f"bad key: {r.status_code} {r.text}")
    # On stdio the key is checked by the server at the first call.
    async with Client(server("stdio", "wk_nope.nope")) as c:
        r = text(await call(c, "list_sandboxes", {}, ok=False))
        check("invalid API key" in r, f"stdio with a bad key: {r}")


async def main():
    passed, failed = 0, {}

    async def section(name, fn):
        nonlocal passed
        try:
            await fn()
            passed += 1
            print(f"ok   {name}", flush=True)
        except Exception as e:  # each section reports on its own
            # The SDK's task groups wrap what failed inside them.
            while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
                e = e.exceptions[0]
            failed[name] = f"{type(e).__name__}: {e}"
            print(f"FAIL {name}: {e}", flush=True)
            traceback.print_exc()

    for how, mode in [("http", "auto"), ("http", "legacy"), ("stdio", "auto"), ("stdio", "legacy")]:
        async def one(how=how, mode=mode):
            async with Client(server(how), mode=mode) as c:
                await tools_describe_themselves(c)
                await sandbox_round_trip(c, f"{how}-{mode}")
        await section(f"{how}/{mode}: tools, sandbox round trip", one)

    async def walls(how):
        async with Client(server(how)) as c:
            made = json.loads(text(await call(c, "create_sandbox", {})))
            up = json.loads(text(await call(c, "upload_file", {"name": "private.txt", "content": "mine"})))
            try:
                await other_tenant_is_walled_off(how, made["sandbox_id"], up["file_id"])
            finally:
                await call(c, "destroy_sandbox", {"sandbox_id": made["sandbox_id"]})

    for how in ["http", "stdio"]:
        await section(f"{how}: another tenant is walled off", lambda how=how: walls(how))
        await section(f"{how}: quotas apply", lambda how=how: quota_applies(how))

    async def code():
        async with Client(server("http")) as c:
            await code_runs_statefully(c)
    await section("http: run_code is stateful, figures are images", code)

    async def review():
        async with Client(server("stdio")) as c:
            await review_runs_to_its_results(c)
    await section("stdio: a review runs to its results", review)
    await section("bad keys are refused", bad_keys_are_refused)

    print(json.dumps({"passed": passed, "failed": failed}))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
