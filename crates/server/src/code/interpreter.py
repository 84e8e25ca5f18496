"""Warden's code interpreter: runs inside a sandbox and serves, on one port,
the HTTP API of E2B's code interpreter (what `e2b_code_interpreter` and
`@e2b/code-interpreter` speak), with stateful Jupyter kernels as contexts:
Python (ipykernel), JavaScript and TypeScript (Deno's kernel), R (IRkernel)
and Bash (bash_kernel), each where its kernel is installed (the python-data
image has all of them).

  POST   /execute               {code, context_id?, language?, env_vars?}
                                -> newline-delimited JSON, one line each:
                                   stdout / stderr {text, timestamp},
                                   result {text, html, png, ..., data (a
                                   DataFrame's), chart (a figure's, see
                                   kernel_startup.py), is_main_result},
                                   error {name, value, traceback},
                                   number_of_executions {execution_count},
                                   keepalive (while the code is quiet),
                                   end_of_execution
  POST   /contexts              {language?, cwd?} -> {id, language, cwd}
                                (language: python, javascript or js,
                                typescript or ts, r, bash)
  GET    /contexts              -> [{id, language, cwd}]
  DELETE /contexts/{id}         -> 204
  POST   /contexts/{id}/restart -> 204
  GET    /health                -> 200

One execution at a time per context (others wait their turn); a client
that goes away interrupts its execution. Written for the standard library
plus jupyter_client and ipykernel (Debian's python3-ipykernel), because it
runs in Warden's data images, not on the host. Warden starts it (see
`code/mod.rs`); it is the sandbox's own process, with the sandbox's limits.
That process supervises: the server runs as its child (`--serve`) and is
started again if it dies, as E2B's systemd unit restarts theirs.
"""

import base64
import json
import os
import queue
import re
import shlex
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Jupyter and IPython write state under $HOME by default; a sandbox's home
# may be read-only, its /tmp never is.
for var, sub in (("JUPYTER_RUNTIME_DIR", "jupyter-runtime"), ("IPYTHONDIR", "ipython"),
                 ("MPLCONFIGDIR", "matplotlib"), ("JUPYTER_DATA_DIR", "jupyter-data")):
    os.environ.setdefault(var, os.path.join("/tmp/.warden-code", sub))
    os.makedirs(os.environ[var], exist_ok=True)
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

# MIME types onto the fields of E2B's Result; anything else goes in `extra`.
MIME_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "e2b/chart": "chart",
}

# Run in every kernel at its start (and restart), unseen by the client:
# what E2B's kernels add to IPython (DataFrame data, charts, PIL saves).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel_startup.py")) as f:
    KERNEL_STARTUP = f.read()

KEEPALIVE_SECONDS = 1.0
# What an environment variable's name may be: the languages' own rules
# differ (bash's are the narrowest), and the names go into code below.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Deno keeps its caches under $HOME, which may be read-only; never asks or
# checks for updates.
os.environ.setdefault("DENO_DIR", os.path.join("/tmp/.warden-code", "deno"))
os.environ.setdefault("DENO_NO_UPDATE_CHECK", "1")
os.environ.setdefault("DENO_NO_PROMPT", "1")


def python_env(env_vars):
    """Code that sets `env_vars` for one execution, and code that puts back
    what was there before."""
    names = list(env_vars)
    return (
        "import os as _w_os\n"
        f"_w_saved = {{k: _w_os.environ.get(k) for k in {names!r}}}\n"
        f"_w_os.environ.update({json.dumps(env_vars)})\n",
        "for _w_k, _w_v in _w_saved.items():\n"
        "    _w_os.environ.pop(_w_k, None) if _w_v is None "
        "else _w_os.environ.__setitem__(_w_k, _w_v)\n")


def deno_env(env_vars):
    # Valid TypeScript as well as JavaScript: Deno's kernel strips types
    # without checking them.
    return (
        "globalThis.__wardenEnv = {};\n"
        f"for (const [k, v] of Object.entries({json.dumps(env_vars)})) {{\n"
        "  globalThis.__wardenEnv[k] = Deno.env.get(k); Deno.env.set(k, v);\n"
        "}\n",
        "for (const [k, v] of Object.entries(globalThis.__wardenEnv ?? {})) {\n"
        "  if (v === undefined) Deno.env.delete(k); else Deno.env.set(k, v);\n"
        "}\n"
        "delete globalThis.__wardenEnv;\n")


def r_string(value):
    # JSON's escapes are R's, but for \u surrogate pairs: keep non-ASCII
    # as it is (R reads UTF-8 source).
    return json.dumps(value, ensure_ascii=False)


def r_env(env_vars):
    names = ", ".join(r_string(k) for k in env_vars)
    pairs = ", ".join(f"{r_string(k)} = {r_string(v)}" for k, v in env_vars.items())
    return (
        f".warden_env <- Sys.getenv(c({names}), unset = NA, names = TRUE)\n"
        f"invisible(do.call(Sys.setenv, list({pairs})))\n",
        "for (.warden_k in names(.warden_env)) {\n"
        "  if (is.na(.warden_env[[.warden_k]])) invisible(Sys.unsetenv(.warden_k))\n"
        "  else invisible(do.call(Sys.setenv, setNames(list(.warden_env[[.warden_k]]), "
        ".warden_k)))\n"
        "}\n"
        "rm(.warden_env, .warden_k)\n")


def bash_env(env_vars):
    set_lines, restore_lines = [], []
    for k, v in env_vars.items():
        set_lines.append(f"__warden_had_{k}=${{{k}+1}}; __warden_old_{k}=${{{k}-}}; "
                         f"export {k}={shlex.quote(v)}")
        restore_lines.append(f'if [ -n "$__warden_had_{k}" ]; then export {k}="$__warden_old_{k}"; '
                             f"else unset {k}; fi; unset __warden_had_{k} __warden_old_{k}")
    return "\n".join(set_lines) + "\n", "\n".join(restore_lines) + "\n"


FENCE_MESSAGE = "x-warden-fence"
DENO_FENCE = f'Deno.jupyter.broadcast("{FENCE_MESSAGE}", {{}})'


class Language:
    def __init__(self, name, kernel, env, startup=False, kernel_env=None, fence=None):
        self.name = name
        self.kernel = kernel
        self.env = env
        # Python's: run KERNEL_STARTUP in it.
        self.startup = startup
        # Set in its kernel's environment only.
        self.kernel_env = kernel_env or {}
        # Code that publishes a FENCE_MESSAGE (see Context.drain).
        self.fence = fence


# Languages by the names clients give (E2B's aliases included); TypeScript
# runs in Deno's kernel too, as its own contexts.
LANGUAGES = {}
for _lang in (
        Language("python", "python3", python_env, startup=True),
        # Deno colours values (ANSI) unless told not to. Its kernel sends a
        # value or a display through a queue of its own, and may say it is
        # idle before the queue is empty (seen after a quiet second or so):
        # a fence message sent through that queue marks its end.
        Language("javascript", "deno", deno_env, kernel_env={"NO_COLOR": "1"}, fence=DENO_FENCE),
        Language("typescript", "deno", deno_env, kernel_env={"NO_COLOR": "1"}, fence=DENO_FENCE),
        Language("r", "ir", r_env),
        Language("bash", "bash", bash_env)):
    LANGUAGES[_lang.name] = _lang
ALIASES = {"js": "javascript", "ts": "typescript"}
# The contexts made at start (E2B's interpreter makes these two).
DEFAULT_LANGUAGES = ("python", "javascript")
DEFAULT_CWD = os.environ.get("WARDEN_CODE_CWD") or os.getcwd()


def now_ns():
    return time.time_ns()


def result_of(data, metadata, main):
    out = {"type": "result", "is_main_result": main}
    extra = {}
    for mime, value in data.items():
        field = MIME_FIELDS.get(mime)
        if field == "text" and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            # As E2B's interpreter: a string's repr is shown as the string.
            out[field] = value[1:-1]
        elif field is not None:
            out[field] = value
        else:
            extra[mime] = value
    if extra:
        out["extra"] = extra
    return out


class Context:
    """One stateful kernel."""

    def __init__(self, language, cwd):
        from jupyter_client import KernelManager

        self.id = str(uuid.uuid4())
        self.language = language
        self.cwd = cwd
        self.turn = threading.Lock()
        self.spec = LANGUAGES[language]
        # Its connection file named under the runtime directory: how a
        # supervisor finds the kernels of a server that died.
        runtime = os.environ["JUPYTER_RUNTIME_DIR"]
        self.km = KernelManager(kernel_name=self.spec.kernel, connection_file=os.path.join(
            runtime, f"kernel-{self.id}.json"))
        # What the kernel itself says (not its code's output, which comes
        # as messages): the reason when it dies.
        self.log_path = os.path.join(runtime, f"kernel-{self.id}.log")
        # Open for the context's life: a restart starts the kernel with it
        # again.
        self.log = open(self.log_path, "ab")
        try:
            self.km.start_kernel(cwd=cwd, env={**os.environ, **self.spec.kernel_env},
                                 stderr=self.log)
        except Exception:
            self.log.close()
            raise
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.ready()

    def ready(self):
        try:
            self.kc.wait_for_ready(timeout=60)
        except RuntimeError as e:
            # A kernel that died at start: say why, and leave no process.
            said = self.log_tail() or "nothing"
            self.shutdown()
            raise RuntimeError(f"{e}; it said: {said}") from None
        if self.spec.startup:
            self.silent(KERNEL_STARTUP)

    def describe(self):
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    def restart(self):
        with self.turn:
            self.kc.stop_channels()
            self.km.restart_kernel(now=True)
            self.kc = self.km.blocking_client()
            self.kc.start_channels()
            self.ready()

    def log_tail(self, limit=2000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - limit))
                return f.read().decode(errors="replace").strip()
        except OSError:
            return ""

    def shutdown(self):
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        self.log.close()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass

    def silent(self, code):
        """Runs setup code the caller never sees (per-call env vars)."""
        msg_id = self.kc.execute(code, silent=True, store_history=False)
        self.drain(msg_id, lambda _line: None, lambda: True, fence=False)

    def drain(self, msg_id, emit, alive, fence=True):
        """Relays the execution's messages until the kernel is idle again
        (and, for a kernel that publishes some after that, until its fence).
        `emit` gets each line; `alive()` false (the client went away)
        interrupts the kernel."""
        interrupted = False
        fence_id = fence_deadline = None
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=KEEPALIVE_SECONDS)
            except queue.Empty:
                if fence_id and time.monotonic() > fence_deadline:
                    return  # the fence never came: end as idle said
                if not alive() and not interrupted:
                    self.km.interrupt_kernel()
                    interrupted = True
                emit({"type": "keepalive"})
                continue
            parent = msg.get("parent_header", {}).get("msg_id")
            kind, content = msg["msg_type"], msg["content"]
            if fence_id and parent == fence_id and kind == FENCE_MESSAGE:
                return
            if parent != msg_id:
                continue
            if kind == "stream":
                emit({"type": content["name"], "text": content["text"], "timestamp": now_ns()})
            elif kind == "execute_result":
                emit(result_of(content["data"], content.get("metadata", {}), True))
            elif kind == "display_data":
                emit(result_of(content["data"], content.get("metadata", {}), False))
            elif kind == "error":
                emit({"type": "error", "name": content["ename"], "value": content["evalue"],
                      "traceback": "\n".join(content["traceback"])})
            elif kind == "execute_input":
                emit({"type": "number_of_executions",
                      "execution_count": content["execution_count"]})
            elif kind == "status" and content["execution_state"] == "idle":
                if not (fence and self.spec.fence) or fence_id:
                    return
                # What the kernel publishes through its queue (a value, a
                # display) may still be on its way: a message of our own
                # sent through the same queue comes after all of it.
                fence_id = self.kc.execute(self.spec.fence, silent=True, store_history=False)
                fence_deadline = time.monotonic() + 5

    def execute(self, code, env_vars, emit, alive):
        with self.turn:
            restore = None
            if env_vars:
                set_code, restore = self.spec.env(env_vars)
                self.silent(set_code)
            try:
                # stop_on_error off: after an error (an interrupt's
                # KeyboardInterrupt too) ipykernel otherwise aborts, without
                # running them, the requests that reach it before its event
                # loop turns (stop_on_error_timeout) -- and the next one of
                # ours, sent the moment this one is idle, sometimes does.
                # One execution at a time per context: nothing queued is
                # ever meant to be aborted.
                msg_id = self.kc.execute(code, store_history=True, allow_stdin=False,
                                         stop_on_error=False)
                self.drain(msg_id, emit, alive)
            finally:
                if restore:
                    self.silent(restore)
            emit({"type": "end_of_execution"})


class Contexts:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_id = {}
        self.default = {}

    def create(self, language, cwd):
        ctx = Context(language, cwd)
        with self.lock:
            self.by_id[ctx.id] = ctx
        return ctx

    def default_for(self, language):
        with self.lock:
            ctx = self.default.get(language)
        if ctx is None:
            ctx = self.create(language, DEFAULT_CWD)
            with self.lock:
                # Another request may have made one meanwhile: keep the first.
                if language in self.default:
                    ctx.shutdown()
                    self.by_id.pop(ctx.id, None)
                    ctx = self.default[language]
                else:
                    self.default[language] = ctx
        return ctx

    def get(self, ctx_id):
        with self.lock:
            return self.by_id.get(ctx_id)

    def remove(self, ctx_id):
        with self.lock:
            ctx = self.by_id.pop(ctx_id, None)
            for lang, d in list(self.default.items()):
                if d is ctx:
                    del self.default[lang]
        if ctx is not None:
            ctx.shutdown()
        return ctx is not None

    def all(self):
        """Default contexts first (made at start, as E2B's are), then the
        others in the order they were made."""
        with self.lock:
            defaults = list(self.default.values())
            return defaults + [c for c in self.by_id.values() if c not in defaults]


CONTEXTS = Contexts()
# The languages whose kernels this image has (found at start).
AVAILABLE = []
# Set once each default context has started (or failed to): E2B's
# interpreter makes its default contexts before it serves, so a listing
# right after start already shows them.
DEFAULTS_READY = {language: threading.Event() for language in DEFAULT_LANGUAGES}


def find_languages():
    from jupyter_client.kernelspec import KernelSpecManager

    kernels = set(KernelSpecManager().find_kernel_specs())
    return [name for name, lang in LANGUAGES.items() if lang.kernel in kernels]


def start_defaults():
    """Python's first (what a first `run_code` waits for), then the rest."""
    for language in DEFAULT_LANGUAGES:
        try:
            if language in AVAILABLE:
                CONTEXTS.default_for(language)
        except Exception as e:  # listed as missing; an execute says why
            print(f"warden code interpreter: the default {language} kernel did not start: {e}",
                  file=sys.stderr)
        finally:
            DEFAULTS_READY[language].set()


def wait_defaults(language=None):
    """Waits for the default context of `language` (all of them: None)
    while it is being started, so a request never starts a second one."""
    for lang, ready in DEFAULTS_READY.items():
        if language is None or lang == language:
            ready.wait(timeout=60)


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def language_of(body):
    language = (body.get("language") or "python").strip().lower()
    language = ALIASES.get(language, language)
    if language not in AVAILABLE:
        raise Refused(400, f"language {language!r} is not supported: this interpreter runs "
                           f"{', '.join(AVAILABLE) or 'nothing (no Jupyter kernel is installed)'}")
    return language


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "warden-code-interpreter"

    def log_message(self, fmt, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 64 << 20:
            raise Refused(413, "request body too large")
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            v = json.loads(raw)
        except ValueError:
            raise Refused(400, "the body is not JSON")
        if not isinstance(v, dict):
            raise Refused(400, "the body is not a JSON object")
        return v

    def answer(self, status, value=None):
        data = b"" if value is None else json.dumps(value).encode()
        self.send_response(status)
        if value is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self, method):
        try:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            parts = path.strip("/").split("/")
            if method == "GET" and path == "/health":
                return self.answer(200, {"status": "ok"})
            if method == "POST" and path == "/execute":
                return self.execute(self.body())
            if path == "/contexts":
                if method == "POST":
                    body = self.body()
                    ctx = CONTEXTS.create(language_of(body), body.get("cwd") or DEFAULT_CWD)
                    return self.answer(200, ctx.describe())
                if method == "GET":
                    wait_defaults()
                    return self.answer(200, [c.describe() for c in CONTEXTS.all()])
            if len(parts) == 2 and parts[0] == "contexts" and method == "DELETE":
                if not CONTEXTS.remove(parts[1]):
                    raise Refused(404, f"context {parts[1]} not found")
                return self.answer(204)
            if len(parts) == 3 and parts[0] == "contexts" and parts[2] == "restart" \
                    and method == "POST":
                ctx = CONTEXTS.get(parts[1])
                if ctx is None:
                    raise Refused(404, f"context {parts[1]} not found")
                ctx.restart()
                return self.answer(204)
            raise Refused(404, f"{method} {path} is not a route of the code interpreter")
        except Refused as e:
            self.answer(e.status, {"error": str(e), "message": str(e)})
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # a failure of ours: say what
            self.answer(500, {"error": f"{type(e).__name__}: {e}",
                              "message": f"{type(e).__name__}: {e}"})

    def execute(self, body):
        code = body.get("code")
        if not isinstance(code, str):
            raise Refused(400, "code is required (a string)")
        env_vars = body.get("env_vars") or {}
        if not isinstance(env_vars, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()):
            raise Refused(400, "env_vars must map names to strings")
        for name, value in env_vars.items():
            if not ENV_NAME.match(name):
                raise Refused(400, f"env_vars: {name!r} is not a variable name "
                                   "(letters, digits and _, not starting with a digit)")
            if "\0" in value:
                raise Refused(400, f"env_vars: the value of {name} holds a NUL byte")
        ctx_id = body.get("context_id")
        if ctx_id and body.get("language"):
            raise Refused(400, "give context_id or language, not both")
        if ctx_id:
            ctx = CONTEXTS.get(ctx_id)
            if ctx is None:
                raise Refused(404, f"context {ctx_id} not found")
        else:
            language = language_of(body)
        # The answer starts before a default kernel that is still starting
        # is ready: a client sees its execution under way (and a sandbox
        # killed meanwhile as a broken stream, not as no answer).
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        state = {"alive": True}

        def emit(line):
            if not state["alive"]:
                return
            data = (json.dumps(line) + "\n").encode()
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            except OSError:
                state["alive"] = False

        if not ctx_id:
            try:
                # The default kernel being started at start-up: wait for it
                # rather than start a second one.
                wait_defaults(language)
                ctx = CONTEXTS.default_for(language)
            except Exception as e:
                emit({"type": "error", "name": type(e).__name__,
                      "value": f"the {language} kernel did not start: {e}", "traceback": ""})
                emit({"type": "end_of_execution"})
                ctx = None
        if ctx is not None:
            ctx.execute(code, env_vars, emit, lambda: state["alive"])
        if state["alive"]:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")


def serve(port):
    try:
        import ipykernel  # noqa: F401  (the kernels' own package)
        import jupyter_client  # noqa: F401
    except ImportError as e:
        # Before listening: Warden sees the exit and says what is missing.
        print(f"warden code interpreter: {e}", file=sys.stderr)
        sys.exit(3)
    AVAILABLE.extend(find_languages())
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    # Listening first, the default kernels right after: the first execute
    # waits for its language's instead of starting another.
    threading.Thread(target=start_defaults, daemon=True).start()
    server.serve_forever()


def end_orphaned_kernels():
    """Ends the kernels (and what they started) of a server that died:
    each kernel leads a session of its own and names its connection file,
    under the runtime directory, on its command line."""
    import signal

    marker = os.environ["JUPYTER_RUNTIME_DIR"].encode() + b"/kernel-"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker in f.read():
                    os.killpg(int(entry), signal.SIGKILL)
        except OSError:
            pass  # gone meanwhile (ProcessLookupError), or not a session leader


def supervise(port):
    """Runs the server as a child and starts it again when it dies, as E2B's
    interpreter is restarted by systemd: code that kills it (or a kernel
    that takes it down) does not end the sandbox's interpreter. Gives up
    after 5 deaths within a minute, saying so."""
    import subprocess

    deaths = []
    while True:
        child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve",
                                  str(port)])
        status = child.wait()
        if status == 3:  # the kernels' packages are missing: no retry helps
            sys.exit(3)
        end_orphaned_kernels()
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < 60] + [now]
        print(f"warden code interpreter: the server ended (status {status}); "
              f"{'giving up after 5 restarts within a minute' if len(deaths) > 5 else 'restarting it'}",
              file=sys.stderr)
        if len(deaths) > 5:
            sys.exit(1)
        time.sleep(0.1 * len(deaths))


def main():
    args = sys.argv[1:]
    if args[:1] == ["--serve"]:
        serve(int(args[1]))
    else:
        supervise(int(args[0]) if args else 49999)


if __name__ == "__main__":
    main()
