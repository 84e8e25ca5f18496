#!/usr/bin/env python3
"""Warden's code interpreter driven through E2B's own SDK
(e2b-code-interpreter 2.11.5), unchanged: `Sandbox.create()` asks for the
`code-interpreter-v1` template, and `run_code` and the contexts reach the
interpreter on the sandbox's port 49999 through `E2B_SANDBOX_URL`.

Same conventions as compat.py: each section on its own, a failure names its
step, the last line is a JSON summary (with the round-trip figures), exit
code 1 if any section failed.
"""

import asyncio
import base64
import json
import statistics
import sys
import time
import traceback

from e2b import TimeoutException
from e2b_code_interpreter import AsyncSandbox, Sandbox

from compat_util import RUN, check, expect_raises

FIGURES = {}


def values_and_state(sbx):
    first = sbx.run_code("x = 1 + 1\nx")
    check(first.text == "2", f"1+1: {first.text!r} {first.error}")
    check(first.execution_count is not None, "execution_count")
    check(sbx.run_code("x * 21").text == "42", "state kept between calls")


def output_callbacks(sbx):
    out, err = [], []
    ex = sbx.run_code("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)",
                      on_stdout=lambda m: out.append(m.line),
                      on_stderr=lambda m: err.append(m.line))
    check(out == ["to stdout\n"], f"on_stdout: {out}")
    check(err == ["to stderr\n"], f"on_stderr: {err}")
    check(ex.logs.stdout == ["to stdout\n"], f"logs.stdout: {ex.logs.stdout}")


def errors(sbx):
    ex = sbx.run_code("1 / 0")
    check(ex.error is not None and ex.error.name == "ZeroDivisionError",
          f"error: {ex.error}")
    check("division by zero" in ex.error.value, f"error value: {ex.error.value}")
    seen = []
    sbx.run_code("raise ValueError('bad')", on_error=lambda e: seen.append(e.name))
    check(seen == ["ValueError"], f"on_error: {seen}")


def rich_results(sbx):
    df = sbx.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
    check(df.results and df.results[0].html and "<table" in df.results[0].html,
          f"a DataFrame as HTML: {df.results}")
    check(df.results[0].data == {"a": [1, 2], "b": [3, 4]}, f"its data: {df.results[0].data}")
    saved = sbx.run_code("from PIL import Image\nImage.new('RGB', (4, 4)).save('/tmp/x.png')")
    check([r for r in saved.results if r.png], f"an image saved to a file is shown: {saved}")
    fig = sbx.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    pngs = [r.png for r in fig.results if r.png]
    check(pngs, f"a figure as PNG: {fig.results} {fig.error}")
    check(base64.b64decode(pngs[0])[:8] == b"\x89PNG\r\n\x1a\n", "PNG bytes")
    # What the figure shows, as E2B's charts describe it.
    chart = next((r.chart for r in fig.results if r.chart), None)
    check(chart is not None and chart.type == "line" and len(chart.elements) == 1
          and [p[1] for p in chart.elements[0].points] == [1.0, 3.0, 2.0], f"its chart: {chart}")
    bars = sbx.run_code("plt.figure()\nplt.bar(['a', 'b'], [3, 5], label='n')\nplt.show()")
    chart = next((r.chart for r in bars.results if r.chart), None)
    check(chart is not None and chart.type == "bar"
          and [(b.label, b.value, b.group) for b in chart.elements] == [("a", 3, "n"), ("b", 5, "n")],
          f"a bar chart: {chart and chart.to_dict()}")


def env_vars(sbx):
    got = sbx.run_code("import os\nos.environ.get('WARDEN_CI_VAR')", envs={"WARDEN_CI_VAR": "v1"})
    # A string result is shown without its quotes, as E2B's interpreter does.
    check(got.text == "v1", f"envs in the call: {got.text!r}")
    after = sbx.run_code("os.environ.get('WARDEN_CI_VAR')")
    check(after.text is None or after.text == "None", f"envs after the call: {after.text!r}")


def contexts(sbx):
    ctx = sbx.create_code_context()
    sbx.run_code("y = 5", context=ctx)
    check(sbx.run_code("y", context=ctx).text == "5", "state in a context")
    missing = sbx.run_code("y")
    check(missing.error is not None and missing.error.name == "NameError",
          f"the default context is separate: {missing.error}")
    ids = [c.id for c in sbx.list_code_contexts()]
    check(ids[-1] == ctx.id, f"list_code_contexts, the newest last: {ids}")
    sbx.restart_code_context(ctx)
    gone = sbx.run_code("y", context=ctx)
    check(gone.error is not None and gone.error.name == "NameError", "restart clears state")
    sbx.remove_code_context(ctx)
    check(ctx.id not in [c.id for c in sbx.list_code_contexts()], "remove_code_context")


def other_languages(sbx):
    langs = [c.language for c in sbx.list_code_contexts()]
    check("python" in langs and "javascript" in langs, f"the default contexts: {langs}")
    js = sbx.run_code("console.log('from js'); let n = 20; n + 1", language="js")
    check(js.logs.stdout == ["from js\n"] and js.text == "21", f"JavaScript: {js}")
    check(sbx.run_code("n * 2", language="javascript").text == "40", "JavaScript keeps state")
    check(sbx.run_code("await Promise.resolve('done')", language="js").text == "done",
          "top-level await")
    esm = sbx.run_code("import { readFileSync } from 'fs'\nconsole.log(typeof readFileSync)",
                       language="js")
    check(esm.logs.stdout == ["function\n"], f"ES module imports: {esm}")
    env = sbx.run_code("process.env.WARDEN_CI_VAR", language="js", envs={"WARDEN_CI_VAR": "j"})
    check(env.text == "j", f"envs in a JavaScript call: {env.text!r}")
    check(sbx.run_code("process.env.WARDEN_CI_VAR ?? 'unset'", language="js").text == "unset",
          "envs after the JavaScript call")
    ts = sbx.run_code("const m: string = 'typed'; console.log(m)", language="ts")
    check(ts.logs.stdout == ["typed\n"], f"TypeScript: {ts}")
    err = sbx.run_code("throw new TypeError('bad js')", language="js")
    check(err.error is not None and "bad js" in err.error.value, f"a JavaScript error: {err}")
    r = sbx.run_code('print("from R")', language="r")
    check(r.logs.stdout == ['[1] "from R"\n'], f"R: {r}")
    renv = sbx.run_code("Sys.getenv('WARDEN_CI_VAR')", language="r", envs={"WARDEN_CI_VAR": "r"})
    # IRkernel shows values as displays, not as the main result (so E2B's
    # `text` is None for R; its tests read `results[0]`).
    check(renv.results and renv.results[0].text == '[1] "r"', f"envs in an R call: {renv}")
    unset = sbx.run_code("Sys.getenv('WARDEN_CI_VAR', unset = 'unset')", language="r")
    check(unset.results and unset.results[0].text == '[1] "unset"', "envs after the R call")
    sbx.run_code("COUNT=41", language="bash")
    bash = sbx.run_code("echo $((COUNT + 1)) $WARDEN_CI_VAR", language="bash",
                        envs={"WARDEN_CI_VAR": "b"})
    check(bash.logs.stdout == ["42 b\n"], f"Bash keeps state, envs: {bash}")
    after = sbx.run_code("echo ${WARDEN_CI_VAR:-unset}", language="bash")
    check(after.logs.stdout == ["unset\n"], f"envs after the Bash call: {after}")
    from e2b import SandboxException  # the SDK's class for a 400 of the interpreter
    expect_raises(SandboxException, "a language with no kernel", sbx.run_code,
                  "1", language="cobol")


def restarted_after_kill(sbx):
    """The interpreter comes back after code kills it, as E2B's systemd
    unit brings theirs back; its kernels went with it."""
    sbx.run_code("import os\nos.getpid()")
    sbx.commands.run("pkill -9 -f 'interpreter[.]py --serve' || true")
    health = ""
    for _ in range(100):
        health = sbx.commands.run(
            "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:49999/health || true").stdout
        if health == "200":
            break
        time.sleep(0.1)
    check(health == "200", f"health after the kill: {health!r}")
    check(sbx.run_code("x = 2; x * 2").text == "4", "run_code after the restart")
    langs = [c.language for c in sbx.list_code_contexts()]  # waits for both defaults
    check(langs == ["python", "javascript"], f"contexts after the restart: {langs}")
    kernels = sbx.commands.run("pgrep -f 'kernel-[0-9a-f-]*[.]json' | wc -l").stdout.strip()
    # The two default contexts of the new server, none left from the old.
    check(kernels == "2", f"kernels running after the restart: {kernels}")


def timeouts(sbx):
    t0 = time.monotonic()
    expect_raises(TimeoutException, "run_code past its timeout", sbx.run_code,
                  "import time\ntime.sleep(30)", timeout=2)
    check(time.monotonic() - t0 < 15, "the timeout came in time")
    # The abandoned execution was interrupted: the context serves again.
    t0 = time.monotonic()
    after = sbx.run_code("x")
    check(after.text == "2", f"the context after a timeout: {after}")
    check(time.monotonic() - t0 < 10, "the next call did not wait for the old one")


def figures(sbx):
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        sbx.run_code("1+1")
        times.append((time.perf_counter() - t0) * 1000)
    FIGURES["run_code_1plus1_p50_ms"] = round(statistics.median(times), 1)
    firsts = []
    for _ in range(3):
        t0 = time.perf_counter()
        s = Sandbox.create(metadata={"suite": RUN})
        try:
            check(s.run_code("1+1").text == "2", "first run_code")
            firsts.append((time.perf_counter() - t0) * 1000)
        finally:
            s.kill()
    FIGURES["create_to_first_run_code_p50_ms"] = round(statistics.median(firsts), 1)


def async_api(_sbx):
    async def go():
        s = await AsyncSandbox.create(metadata={"suite": RUN})
        try:
            ex = await s.run_code("sum(range(10))")
            check(ex.text == "45", f"async run_code: {ex.text!r}")
        finally:
            await s.kill()
    asyncio.run(go())


def main():
    passed, failed = [], {}
    t0 = time.monotonic()
    try:
        sbx = Sandbox.create(metadata={"suite": RUN})
    except Exception as e:
        traceback.print_exc()
        failed["create"] = f"{type(e).__name__}: {e}"
        sbx = None
    sections = [
        ("run_code: values and state", values_and_state),
        ("on_stdout / on_stderr", output_callbacks),
        ("errors", errors),
        ("DataFrame as HTML, figure as PNG", rich_results),
        ("envs per call", env_vars),
        ("contexts: create, list, restart, remove", contexts),
        ("timeout interrupts the execution", timeouts),
        ("JavaScript, TypeScript, R, Bash", other_languages),
        ("restarted after a kill", restarted_after_kill),
        ("figures", figures),
        ("async API", async_api),
    ]
    for name, fn in sections if sbx else []:
        t = time.monotonic()
        try:
            fn(sbx)
            passed.append(name)
            print(f"[ok] {name} ({time.monotonic() - t:.2f} s)")
        except Exception as e:
            traceback.print_exc()
            failed[name] = f"{type(e).__name__}: {e}"
            print(f"[FAILED] {name}")
    if sbx:
        sbx.kill()
    print(json.dumps({"sdk": "python", "e2b-code-interpreter": "2.11.5",
                      "passed": len(passed), "failed": failed, "figures": FIGURES,
                      "seconds": round(time.monotonic() - t0, 1)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
