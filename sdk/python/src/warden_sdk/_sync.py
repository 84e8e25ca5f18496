"""The synchronous client: ``Warden``."""

from __future__ import annotations

import codecs
import json
import os
import time
from pathlib import Path
from typing import IO, Any, Callable, Generator, Iterator, Optional, Union

import httpx

from . import _ops as ops
from ._core import (
    Body,
    Op,
    Req,
    Resp,
    SseParser,
    backoff,
    check,
    decode_output,
    error_for,
    settings,
    should_retry,
)
from ._errors import Conflict, NotFound, WardenConnectionError
from ._models import (
    AuditEntry,
    Entry,
    ExecResult,
    File,
    Limits,
    Output,
    ReviewInfo,
    SandboxInfo,
    Secret,
    UploadUrl,
    Usage,
)

Progress = Callable[[int, Optional[int]], None]
Source = Union[bytes, str, os.PathLike, IO[bytes]]
CHUNK = 256 << 10


class Warden:
    """A client of one Warden server with a tenant API key.

    ``Warden()`` reads ``WARDEN_URL`` (default ``http://127.0.0.1:7300``) and
    ``WARDEN_API_KEY``. Calls that are safe to repeat (reads, deletes, PUTs,
    a review submit with an ``idempotency_key``) are retried ``max_retries``
    times on a broken connection or a 502/503/504; others never are.
    """

    def __init__(
        self,
        url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self.url, key = settings(url, api_key)
        self.max_retries = max_retries
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "warden-sdk-python/0.1"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )
        self.files = Files(self)
        self.sandboxes = Sandboxes(self)
        self.reviews = Reviews(self)
        self.secrets = Secrets(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Warden":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # The driver -----------------------------------------------------------

    def _send(self, req: Req) -> Resp:
        attempt = 0
        while True:
            try:
                r = self._http.request(
                    req.method, req.path, params=req.params, json=req.json,
                    content=req.content, headers=req.headers,
                )
            except httpx.TransportError as e:
                if attempt < self.max_retries and should_retry(req, None):
                    time.sleep(backoff(attempt, None))
                    attempt += 1
                    continue
                raise WardenConnectionError(f"{self.url}: {e}") from e
            if attempt < self.max_retries and should_retry(req, r.status_code, r.content):
                time.sleep(backoff(attempt, r.headers.get("retry-after")))
                attempt += 1
                continue
            return Resp(r.status_code, r.headers, r.content)

    def _run(self, op: Op) -> Any:
        try:
            req = next(op)
            while True:
                req = op.send(self._send(req))
        except StopIteration as done:
            return done.value

    def _pages(self, page: Callable[[Any], Op]) -> Iterator[Any]:
        cursor = None
        while True:
            items, cursor = self._run(page(cursor))
            yield from items
            if not cursor or not items:
                return

    def _stream(self, method: str, path: str, **kw: Any):
        try:
            return self._http.stream(method, path, **kw)
        except httpx.TransportError as e:  # pragma: no cover - raised on enter
            raise WardenConnectionError(f"{self.url}: {e}") from e

    # Tenant-wide reads ------------------------------------------------------

    def audit(self, *, after: Optional[int] = None, limit: int = 100) -> Iterator[AuditEntry]:
        """The tenant's audit log from sequence ``after`` on, oldest first."""
        return self._pages(lambda c: ops.audit_page(c if c is not None else after, limit))

    def usage(self, *, since: Optional[str] = None, until: Optional[str] = None) -> Usage:
        """What the tenant's sandboxes used (RFC 3339 bounds)."""
        return self._run(ops.usage(since, until))


def _chunks(src: Source, on_progress: Optional[Progress]) -> tuple[Any, Optional[int]]:
    """A body and its length: bytes as they are, a path or file read in
    pieces with progress reported as each piece is sent."""
    if isinstance(src, (bytes, str)):
        data = src.encode() if isinstance(src, str) else src
        if on_progress is None:
            return data, len(data)
        src = __import__("io").BytesIO(data)
    owned = isinstance(src, (os.PathLike, str))
    f: IO[bytes] = open(src, "rb") if owned else src  # type: ignore[arg-type, assignment]
    try:
        total: Optional[int] = os.fstat(f.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        total = None
    if total is None and hasattr(f, "getbuffer"):
        total = len(f.getbuffer())  # type: ignore[attr-defined]

    def gen() -> Iterator[bytes]:
        sent = 0
        try:
            while piece := f.read(CHUNK):
                sent += len(piece)
                yield piece
                if on_progress:
                    on_progress(sent, total)
        finally:
            if owned:
                f.close()

    return gen(), total


class Files:
    """The tenant's uploads."""

    def __init__(self, c: Warden) -> None:
        self._c = c

    def upload(self, name: str, data: Source, *, on_progress: Optional[Progress] = None) -> File:
        """Uploads bytes, a path or an open binary file, streamed;
        ``on_progress(sent, total)`` is called as it goes."""
        body, total = _chunks(data, on_progress)
        headers = {"content-type": "application/octet-stream"}
        if total is not None:
            headers["content-length"] = str(total)
        return self._c._run(ops.file_upload(name, body, headers))

    def upload_url(self, name: str, *, expires_in_secs: Optional[int] = None) -> UploadUrl:
        """A signed URL to ``PUT`` the file to without the API key."""
        return self._c._run(ops.upload_url(name, expires_in_secs))

    def list(self, *, limit: int = 100) -> Iterator[File]:
        return self._c._pages(lambda cur: ops.file_page(cur, limit))

    def get(self, file_id: str) -> File:
        return self._c._run(ops.file_get(file_id))

    def read(self, file_id: str) -> bytes:
        return self._c._run(ops.file_content(file_id))

    def download(self, file_id: str, dest: Union[str, os.PathLike], *, on_progress: Optional[Progress] = None) -> Path:
        """Streams the file to ``dest`` (written to a temporary name, then renamed)."""
        return _download(self._c, f"/v1/files/{ops.seg(file_id)}/content", Path(dest), on_progress)

    def delete(self, file_id: str) -> None:
        self._c._run(ops.file_delete(file_id))


def _download(c: Warden, path: str, dest: Path, on_progress: Optional[Progress]) -> Path:
    tmp = dest.with_name(f".{dest.name}.part")
    with c._stream("GET", path) as r:
        if r.status_code >= 400:
            raise error_for(r.status_code, r.read())
        total = int(r.headers["content-length"]) if "content-length" in r.headers else None
        got = 0
        try:
            with open(tmp, "wb") as f:
                for piece in r.iter_bytes(CHUNK):
                    f.write(piece)
                    got += len(piece)
                    if on_progress:
                        on_progress(got, total)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return dest


class Sandboxes:
    def __init__(self, c: Warden) -> None:
        self._c = c

    def create(
        self,
        *,
        image: Optional[str] = None,
        files: Any = (),
        env: Optional[dict] = None,
        limits: Optional[Limits] = None,
        isolation: Optional[str] = None,
        network: Optional[dict] = None,
        secrets: Optional[list] = None,
        labels: Optional[dict] = None,
        timeout: Optional[int] = None,
        workdir: Optional[str] = None,
        **extra: Any,
    ) -> "Sandbox":
        """A new sandbox. ``files`` (File objects or ids) appear read-only at
        ``/input/<name>``; ``network=allowlist("pypi.org")`` lets it reach
        those hosts (default: no network); ``secrets`` names the tenant's
        secrets to set as environment variables. Other ``CreateSandbox``
        fields (``writable_root``, ``user``, ``volumes``...) pass through."""
        info = self._c._run(ops.sandbox_create(
            image=image, files=files, env=env, limits=limits, isolation=isolation,
            network=network, secrets=secrets, labels=labels, timeout=timeout,
            workdir=workdir, extra=extra,
        ))
        return Sandbox(self._c, info)

    def get(self, sandbox_id: str) -> "Sandbox":
        return Sandbox(self._c, self._c._run(ops.sandbox_get(sandbox_id)))

    def list(self, *, state: Optional[str] = None, labels: Optional[dict] = None, limit: int = 100) -> Iterator[SandboxInfo]:
        return self._c._pages(lambda cur: ops.sandbox_page(state, labels, cur, limit))


class Sandbox:
    """A sandbox: run commands and processes in it, reach its files. As a
    context manager it is deleted on the way out."""

    def __init__(self, c: Warden, info: SandboxInfo) -> None:
        self._c = c
        self.id = info.id
        self.info = info
        self.files = SandboxFiles(c, info.id)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.delete(missing_ok=True)

    def refresh(self) -> SandboxInfo:
        self.info = self._c._run(ops.sandbox_get(self.id))
        return self.info

    def exec(
        self,
        command: Union[str, list],
        *,
        cwd: Optional[str] = None,
        env: Optional[dict] = None,
        timeout: Optional[float] = None,
        stdin: Optional[Body] = None,
        on_stdout: Optional[Callable[[str], None]] = None,
        on_stderr: Optional[Callable[[str], None]] = None,
    ) -> ExecResult:
        """Runs ``command`` (a shell line, or an argv list) to its end. With
        ``on_stdout``/``on_stderr`` the output streams to them as it comes
        (and is also returned whole); without, the server returns it at the
        end (each stream up to its cap, ``truncated`` says when cut)."""
        body = ops.exec_body(command, cwd, env, timeout, stdin)
        if on_stdout is None and on_stderr is None:
            return self._c._run(ops.exec_json(self.id, body))
        with self._c._stream("POST", f"/v1/sandboxes/{ops.seg(self.id)}/exec", json=body,
                             headers={"accept": "text/event-stream"}) as r:
            if r.status_code >= 400:
                raise error_for(r.status_code, r.read())
            return _collect(r.iter_bytes(), on_stdout, on_stderr)

    def spawn(
        self,
        command: Union[str, list],
        *,
        cwd: Optional[str] = None,
        env: Optional[dict] = None,
        timeout: Optional[float] = None,
        stdin: bool = False,
    ) -> "Process":
        """Starts ``command`` in the background; returns at once. With
        ``stdin=True`` its stdin stays open for ``send_stdin``."""
        pid = self._c._run(ops.spawn(self.id, ops.exec_body(command, cwd, env, timeout, None), stdin))
        return Process(self._c, self.id, pid)

    def processes(self) -> list[dict]:
        return self._c._run(ops.proc_list(self.id))

    def set_timeout(self, seconds: int) -> SandboxInfo:
        """The sandbox now ends ``seconds`` from now."""
        self.info = self._c._run(ops.sandbox_timeout(self.id, seconds))
        return self.info

    def egress(self, *, after: Optional[int] = None, limit: int = 100) -> Iterator[dict]:
        """Its connection attempts through its egress allowlist."""
        return self._c._pages(lambda c: ops.egress_page("sandboxes", self.id, c if c is not None else after, limit))

    def delete(self, *, missing_ok: bool = False) -> None:
        try:
            self._c._run(ops.sandbox_delete(self.id))
        except (NotFound, Conflict):
            if not missing_ok:
                raise


def _collect_events(on_stdout: Any, on_stderr: Any) -> Generator[None, Optional[bytes], ExecResult]:
    """An exec's SSE stream, fed chunk by chunk (``None`` at its end):
    output to the callbacks as text as it comes, and the whole result."""
    parser = SseParser()
    out, err = bytearray(), bytearray()
    dec = {"stdout": codecs.getincrementaldecoder("utf-8")("replace"),
           "stderr": codecs.getincrementaldecoder("utf-8")("replace")}
    result: dict[str, Any] = {}
    while (chunk := (yield)) is not None:
        for event, data in parser.feed(chunk):
            if event in ("stdout", "stderr"):
                b = decode_output(data)
                (out if event == "stdout" else err).extend(b)
                cb = on_stdout if event == "stdout" else on_stderr
                text = dec[event].decode(b)
                if cb and text:
                    cb(text)
            elif event == "started":
                result["pid"] = data.get("pid")
            elif event == "exit":
                result.update(data)
            elif event == "error":
                raise error_for(500, json.dumps({"error": data}).encode())
    return ExecResult.from_json({
        **result,
        "stdout": out.decode("utf-8", "replace"),
        "stderr": err.decode("utf-8", "replace"),
    })


def _collect(chunks: Iterator[bytes], on_stdout: Any, on_stderr: Any) -> ExecResult:
    collect = _collect_events(on_stdout, on_stderr)
    next(collect)
    for chunk in chunks:
        collect.send(chunk)
    try:
        collect.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("unreachable")


class Process:
    """A background process in a sandbox."""

    def __init__(self, c: Warden, sandbox_id: str, pid: int) -> None:
        self._c = c
        self.sandbox_id = sandbox_id
        self.pid = pid

    def send_stdin(self, data: Body, *, close: bool = False) -> None:
        self._c._run(ops.proc_stdin(self.sandbox_id, self.pid, data, close))

    def close_stdin(self) -> None:
        self._c._run(ops.proc_stdin(self.sandbox_id, self.pid, b"", True))

    def signal(self, signal: Union[str, int] = "TERM") -> None:
        self._c._run(ops.proc_signal(self.sandbox_id, self.pid, signal))

    def kill(self) -> None:
        self.signal("KILL")

    def wait(self) -> ExecResult:
        """Waits for it to end; the result has its exit status (the output
        is in ``output()``)."""
        return self._c._run(ops.proc_wait(self.sandbox_id, self.pid))

    def output(self) -> Iterator[tuple[str, bytes]]:
        """``("stdout" | "stderr", bytes)`` from its start, until it ends."""
        path = f"/v1/sandboxes/{ops.seg(self.sandbox_id)}/processes/{self.pid}/output"
        with self._c._stream("GET", path, headers={"accept": "text/event-stream"}) as r:
            if r.status_code >= 400:
                raise error_for(r.status_code, r.read())
            parser = SseParser()
            for chunk in r.iter_bytes():
                for event, data in parser.feed(chunk):
                    if event in ("stdout", "stderr"):
                        yield event, decode_output(data)
                    elif event == "exit":
                        return


class SandboxFiles:
    """Files inside a sandbox, by absolute path in the sandbox's own view."""

    def __init__(self, c: Warden, sandbox_id: str) -> None:
        self._c = c
        self._id = sandbox_id

    def read(self, path: str) -> bytes:
        return self._c._run(ops.fs_read(self._id, path))

    def read_text(self, path: str) -> str:
        return self.read(path).decode()

    def write(self, path: str, data: Body, *, mode: Optional[int] = None) -> Entry:
        return self._c._run(ops.fs_write(self._id, path, data, mode))

    def list(self, path: str) -> list[Entry]:
        return self._c._run(ops.fs_list(self._id, path))

    def stat(self, path: str) -> Entry:
        return self._c._run(ops.fs_stat(self._id, path))

    def mkdir(self, path: str) -> None:
        self._c._run(ops.fs_mkdir(self._id, path))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        self._c._run(ops.fs_remove(self._id, path, recursive))


class Reviews:
    """Review jobs: a command run to its end over files, ``/output`` kept."""

    def __init__(self, c: Warden) -> None:
        self._c = c

    def submit(self, command: Union[str, list], *, files: Any = (), **options: Any) -> "Review":
        """Queues a job. ``command`` is a shell line or an argv list;
        ``options`` are ``SubmitReview``'s fields (``image``, ``env``,
        ``limits``, ``timeout_secs``, ``network``, ``secrets``, ``labels``,
        ``webhook_url``, ``idempotency_key``, ``retry_on_failure``,
        ``isolation``, ``volumes``). With an ``idempotency_key`` a retried
        submit returns the first job."""
        body = ops.review_body(command, files, options)
        return Review(self._c, self._c._run(ops.review_submit(body)))

    def get(self, review_id: str) -> "Review":
        return Review(self._c, self._c._run(ops.review_get(review_id)))

    def list(self, *, status: Optional[str] = None, limit: int = 100) -> Iterator[ReviewInfo]:
        return self._c._pages(lambda cur: ops.review_page(status, cur, limit))

    def webhook_secret(self) -> str:
        """The tenant's key for verifying webhook signatures (``verify_webhook``)."""
        return self._c._run(ops.webhook_secret())


class Review:
    def __init__(self, c: Warden, info: ReviewInfo) -> None:
        self._c = c
        self.id = info.id
        self.info = info

    def refresh(self) -> ReviewInfo:
        self.info = self._c._run(ops.review_get(self.id))
        return self.info

    def wait(self, timeout: Optional[float] = None, *, poll: float = 0.5) -> ReviewInfo:
        """Waits until the job has ended; ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.refresh().ended:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"review {self.id} still {self.info.status} after {timeout} s")
            time.sleep(poll)
        return self.info

    def logs(self, *, stream: str = "both") -> str:
        """What the command printed so far (Warden's notes as ``[warden]`` lines)."""
        return self._c._run(ops.review_log(self.id, stream))

    def follow(self, *, stream: str = "both") -> Iterator[str]:
        """The log as it is printed, until the job ends."""
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        params = {"stream": stream, "follow": "true"}
        with self._c._stream("GET", f"/v1/reviews/{ops.seg(self.id)}/logs", params=params,
                             timeout=httpx.Timeout(None, connect=10.0)) as r:
            if r.status_code >= 400:
                raise error_for(r.status_code, r.read())
            for piece in r.iter_bytes():
                if text := dec.decode(piece):
                    yield text

    def outputs(self) -> list[Output]:
        return self._c._run(ops.review_outputs(self.id))

    def read_output(self, path: str) -> bytes:
        return self._c._run(ops.review_output(self.id, path))

    def download_output(self, path: str, dest: Union[str, os.PathLike], *, on_progress: Optional[Progress] = None) -> Path:
        return _download(self._c, ops.output_path(self.id, path), Path(dest), on_progress)

    def download_outputs(self, dest_dir: Union[str, os.PathLike]) -> list[Path]:
        """Every output under ``dest_dir``, keeping their relative paths."""
        root = Path(dest_dir)
        done = []
        for o in self.outputs():
            target = root.joinpath(*[p for p in o.path.split("/") if p not in ("", ".", "..")])
            target.parent.mkdir(parents=True, exist_ok=True)
            done.append(self.download_output(o.path, target))
        return done

    def cancel(self) -> ReviewInfo:
        self.info = self._c._run(ops.review_cancel(self.id))
        return self.info

    def delete_outputs(self) -> dict:
        return self._c._run(ops.review_delete_outputs(self.id))

    def egress(self, *, after: Optional[int] = None, limit: int = 100) -> Iterator[dict]:
        return self._c._pages(lambda c: ops.egress_page("reviews", self.id, c if c is not None else after, limit))


class Secrets:
    """Write-only values given to sandboxes and jobs as environment variables."""

    def __init__(self, c: Warden) -> None:
        self._c = c

    def set(self, name: str, value: str, *, replace: bool = False) -> Secret:
        return self._c._run(ops.secret_set(name, value, replace))

    def list(self) -> list[Secret]:
        return self._c._run(ops.secret_list())

    def delete(self, name: str) -> None:
        self._c._run(ops.secret_delete(name))
