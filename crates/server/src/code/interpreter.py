"""Warden's code interpreter: runs inside a sandbox and serves, on one port,
the HTTP API of E2B's code interpreter (what `e2b_code_interpreter` and
`@e2b/code-interpreter` speak), with stateful Jupyter kernels as contexts.

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
  GET    /contexts              -> [{id, language, cwd}]
  DELETE /contexts/{id}         -> 204
  POST   /contexts/{id}/restart -> 204
  GET    /health                -> 200

One execution at a time per context (others wait their turn); a client
that goes away interrupts its execution. Written for the standard library
plus jupyter_client and ipykernel (Debian's python3-ipykernel), because it
runs in Warden's data images, not on the host. Warden starts it (see
`code/mod.rs`); it is the sandbox's own process, with the sandbox's limits.
"""

import base64
import json
import os
import queue
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

LANGUAGES = {"python": "python3"}
KEEPALIVE_SECONDS = 1.0
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
        self.km = KernelManager(kernel_name=LANGUAGES[language])
        self.km.start_kernel(cwd=cwd, env=dict(os.environ))
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.silent(KERNEL_STARTUP)

    def describe(self):
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    def restart(self):
        with self.turn:
            self.kc.stop_channels()
            self.km.restart_kernel(now=True)
            self.kc = self.km.blocking_client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=60)
            self.silent(KERNEL_STARTUP)

    def shutdown(self):
        try:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)
        except Exception:
            pass

    def silent(self, code):
        """Runs setup code the caller never sees (per-call env vars)."""
        msg_id = self.kc.execute(code, silent=True, store_history=False)
        self.drain(msg_id, lambda _line: None, lambda: True)

    def drain(self, msg_id, emit, alive):
        """Relays the execution's messages until the kernel is idle again.
        `emit` gets each line; `alive()` false (the client went away)
        interrupts the kernel."""
        interrupted = False
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=KEEPALIVE_SECONDS)
            except queue.Empty:
                if not alive() and not interrupted:
                    self.km.interrupt_kernel()
                    interrupted = True
                emit({"type": "keepalive"})
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
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
                return

    def execute(self, code, env_vars, emit, alive):
        with self.turn:
            if env_vars:
                self.silent(
                    "import os as _w_os\n"
                    f"_w_saved = {{k: _w_os.environ.get(k) for k in {list(env_vars)!r}}}\n"
                    f"_w_os.environ.update({json.dumps(env_vars)})\n")
            try:
                msg_id = self.kc.execute(code, store_history=True, allow_stdin=False)
                self.drain(msg_id, emit, alive)
            finally:
                if env_vars:
                    self.silent(
                        "for _w_k, _w_v in _w_saved.items():\n"
                        "    _w_os.environ.pop(_w_k, None) if _w_v is None "
                        "else _w_os.environ.__setitem__(_w_k, _w_v)\n")
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
# Set once the default Python context has started (or failed to): E2B's
# interpreter makes its default contexts before it serves, so a listing
# right after start already shows them.
DEFAULTS_READY = threading.Event()


def start_defaults():
    try:
        CONTEXTS.default_for("python")
    except Exception as e:  # listed as missing; an execute says why
        print(f"warden code interpreter: the default kernel did not start: {e}",
              file=sys.stderr)
    finally:
        DEFAULTS_READY.set()


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def language_of(body):
    language = (body.get("language") or "python").lower()
    if language not in LANGUAGES:
        raise Refused(400, f"language {language!r} is not supported: this interpreter runs "
                           f"{', '.join(LANGUAGES)}")
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
                    DEFAULTS_READY.wait(timeout=60)
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
                DEFAULTS_READY.wait(timeout=60)
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


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 49999
    try:
        import ipykernel  # noqa: F401  (the kernels' own package)
        import jupyter_client  # noqa: F401
    except ImportError as e:
        # Before listening: Warden sees the exit and says what is missing.
        print(f"warden code interpreter: {e}", file=sys.stderr)
        sys.exit(3)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    # Listening first, the default Python kernel right after: the first
    # execute waits for it instead of starting another.
    threading.Thread(target=start_defaults, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
