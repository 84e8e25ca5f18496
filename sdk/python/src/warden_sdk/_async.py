"""The asynchronous client: ``AsyncWarden``, the same calls as ``Warden``
(each written once in ``_ops``), awaited."""

from __future__ import annotations

import asyncio
import codecs
import os
import time
from pathlib import Path
from typing import IO, Any, AsyncIterator, Callable, Optional, Union

import httpx

from . import _ops as ops
from ._core import Body, Op, Req, Resp, SseParser, backoff, decode_output, error_for, settings, should_retry
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
from ._sync import CHUNK, Progress, _collect_events

Source = Union[bytes, str, os.PathLike, IO[bytes]]


class AsyncWarden:
    """``Warden`` for asyncio: the same settings, retries and errors."""

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
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key}", "User-Agent": "warden-sdk-python/0.1"},
            timeout=httpx.Timeout(timeout, connect=10.0),
        )
        self.files = AsyncFiles(self)
        self.sandboxes = AsyncSandboxes(self)
        self.reviews = AsyncReviews(self)
        self.secrets = AsyncSecrets(self)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncWarden":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _send(self, req: Req) -> Resp:
        attempt = 0
        while True:
            try:
                r = await self._http.request(
                    req.method, req.path, params=req.params, json=req.json,
                    content=req.content, headers=req.headers,
                )
            except httpx.TransportError as e:
                if attempt < self.max_retries and should_retry(req, None):
                    await asyncio.sleep(backoff(attempt, None))
                    attempt += 1
                    continue
                raise WardenConnectionError(f"{self.url}: {e}") from e
            if attempt < self.max_retries and should_retry(req, r.status_code, r.content):
                await asyncio.sleep(backoff(attempt, r.headers.get("retry-after")))
                attempt += 1
                continue
            return Resp(r.status_code, r.headers, r.content)

    async def _run(self, op: Op) -> Any:
        try:
            req = next(op)
            while True:
                req = op.send(await self._send(req))
        except StopIteration as done:
            return done.value

    async def _pages(self, page: Callable[[Any], Op]) -> AsyncIterator[Any]:
        cursor = None
        while True:
            items, cursor = await self._run(page(cursor))
            for item in items:
                yield item
            if not cursor or not items:
                return

    def audit(self, *, after: Optional[int] = None, limit: int = 100) -> AsyncIterator[AuditEntry]:
        return self._pages(lambda c: ops.audit_page(c if c is not None else after, limit))

    async def usage(self, *, since: Optional[str] = None, until: Optional[str] = None) -> Usage:
        return await self._run(ops.usage(since, until))


async def _achunks(src: Source, on_progress: Optional[Progress]) -> tuple[Any, Optional[int]]:
    if isinstance(src, (bytes, str)) and on_progress is None:
        data = src.encode() if isinstance(src, str) else src
        return data, len(data)
    if isinstance(src, (bytes, str)):
        import io

        src = io.BytesIO(src.encode() if isinstance(src, str) else src)
    owned = isinstance(src, os.PathLike) or isinstance(src, str)
    f: IO[bytes] = open(src, "rb") if owned else src  # type: ignore[arg-type, assignment]
    try:
        total: Optional[int] = os.fstat(f.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        total = len(f.getbuffer()) if hasattr(f, "getbuffer") else None  # type: ignore[attr-defined]

    async def gen() -> AsyncIterator[bytes]:
        sent = 0
        try:
            while piece := await asyncio.to_thread(f.read, CHUNK):
                sent += len(piece)
                yield piece
                if on_progress:
                    on_progress(sent, total)
        finally:
            if owned:
                f.close()

    return gen(), total


async def _adownload(c: AsyncWarden, path: str, dest: Path, on_progress: Optional[Progress]) -> Path:
    tmp = dest.with_name(f".{dest.name}.part")
    async with c._http.stream("GET", path) as r:
        if r.status_code >= 400:
            raise error_for(r.status_code, await r.aread())
        total = int(r.headers["content-length"]) if "content-length" in r.headers else None
        got = 0
        try:
            with open(tmp, "wb") as f:
                async for piece in r.aiter_bytes(CHUNK):
                    f.write(piece)
                    got += len(piece)
                    if on_progress:
                        on_progress(got, total)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return dest


class AsyncFiles:
    def __init__(self, c: AsyncWarden) -> None:
        self._c = c

    async def upload(self, name: str, data: Source, *, on_progress: Optional[Progress] = None) -> File:
        body, total = await _achunks(data, on_progress)
        headers = {"content-type": "application/octet-stream"}
        if total is not None:
            headers["content-length"] = str(total)
        return await self._c._run(ops.file_upload(name, body, headers))

    async def upload_url(self, name: str, *, expires_in_secs: Optional[int] = None) -> UploadUrl:
        return await self._c._run(ops.upload_url(name, expires_in_secs))

    def list(self, *, limit: int = 100) -> AsyncIterator[File]:
        return self._c._pages(lambda cur: ops.file_page(cur, limit))

    async def get(self, file_id: str) -> File:
        return await self._c._run(ops.file_get(file_id))

    async def read(self, file_id: str) -> bytes:
        return await self._c._run(ops.file_content(file_id))

    async def download(self, file_id: str, dest: Union[str, os.PathLike], *, on_progress: Optional[Progress] = None) -> Path:
        return await _adownload(self._c, f"/v1/files/{ops.seg(file_id)}/content", Path(dest), on_progress)

    async def delete(self, file_id: str) -> None:
        await self._c._run(ops.file_delete(file_id))


class AsyncSandboxes:
    def __init__(self, c: AsyncWarden) -> None:
        self._c = c

    async def create(
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
    ) -> "AsyncSandbox":
        info = await self._c._run(ops.sandbox_create(
            image=image, files=files, env=env, limits=limits, isolation=isolation,
            network=network, secrets=secrets, labels=labels, timeout=timeout,
            workdir=workdir, extra=extra,
        ))
        return AsyncSandbox(self._c, info)

    async def get(self, sandbox_id: str) -> "AsyncSandbox":
        return AsyncSandbox(self._c, await self._c._run(ops.sandbox_get(sandbox_id)))

    def list(self, *, state: Optional[str] = None, labels: Optional[dict] = None, limit: int = 100) -> AsyncIterator[SandboxInfo]:
        return self._c._pages(lambda cur: ops.sandbox_page(state, labels, cur, limit))


class AsyncSandbox:
    def __init__(self, c: AsyncWarden, info: SandboxInfo) -> None:
        self._c = c
        self.id = info.id
        self.info = info
        self.files = AsyncSandboxFiles(c, info.id)

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.delete(missing_ok=True)

    async def refresh(self) -> SandboxInfo:
        self.info = await self._c._run(ops.sandbox_get(self.id))
        return self.info

    async def exec(
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
        body = ops.exec_body(command, cwd, env, timeout, stdin)
        if on_stdout is None and on_stderr is None:
            return await self._c._run(ops.exec_json(self.id, body))
        async with self._c._http.stream("POST", f"/v1/sandboxes/{ops.seg(self.id)}/exec", json=body,
                                        headers={"accept": "text/event-stream"}) as r:
            if r.status_code >= 400:
                raise error_for(r.status_code, await r.aread())
            collect = _collect_events(on_stdout, on_stderr)
            next(collect)
            async for chunk in r.aiter_bytes():
                collect.send(chunk)
            try:
                collect.send(None)
            except StopIteration as done:
                return done.value
            raise AssertionError("unreachable")

    async def spawn(self, command: Union[str, list], *, cwd: Optional[str] = None,
                    env: Optional[dict] = None, timeout: Optional[float] = None,
                    stdin: bool = False) -> "AsyncProcess":
        pid = await self._c._run(ops.spawn(self.id, ops.exec_body(command, cwd, env, timeout, None), stdin))
        return AsyncProcess(self._c, self.id, pid)

    async def processes(self) -> list[dict]:
        return await self._c._run(ops.proc_list(self.id))

    async def set_timeout(self, seconds: int) -> SandboxInfo:
        self.info = await self._c._run(ops.sandbox_timeout(self.id, seconds))
        return self.info

    def egress(self, *, after: Optional[int] = None, limit: int = 100) -> AsyncIterator[dict]:
        return self._c._pages(lambda c: ops.egress_page("sandboxes", self.id, c if c is not None else after, limit))

    async def delete(self, *, missing_ok: bool = False) -> None:
        try:
            await self._c._run(ops.sandbox_delete(self.id))
        except (NotFound, Conflict):
            if not missing_ok:
                raise


class AsyncProcess:
    def __init__(self, c: AsyncWarden, sandbox_id: str, pid: int) -> None:
        self._c = c
        self.sandbox_id = sandbox_id
        self.pid = pid

    async def send_stdin(self, data: Body, *, close: bool = False) -> None:
        await self._c._run(ops.proc_stdin(self.sandbox_id, self.pid, data, close))

    async def close_stdin(self) -> None:
        await self._c._run(ops.proc_stdin(self.sandbox_id, self.pid, b"", True))

    async def signal(self, signal: Union[str, int] = "TERM") -> None:
        await self._c._run(ops.proc_signal(self.sandbox_id, self.pid, signal))

    async def kill(self) -> None:
        await self.signal("KILL")

    async def wait(self) -> ExecResult:
        return await self._c._run(ops.proc_wait(self.sandbox_id, self.pid))

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        path = f"/v1/sandboxes/{ops.seg(self.sandbox_id)}/processes/{self.pid}/output"
        async with self._c._http.stream("GET", path, headers={"accept": "text/event-stream"}) as r:
            if r.status_code >= 400:
                raise error_for(r.status_code, await r.aread())
            parser = SseParser()
            async for chunk in r.aiter_bytes():
                for event, data in parser.feed(chunk):
                    if event in ("stdout", "stderr"):
                        yield event, decode_output(data)
                    elif event == "exit":
                        return


class AsyncSandboxFiles:
    def __init__(self, c: AsyncWarden, sandbox_id: str) -> None:
        self._c = c
        self._id = sandbox_id

    async def read(self, path: str) -> bytes:
        return await self._c._run(ops.fs_read(self._id, path))

    async def read_text(self, path: str) -> str:
        return (await self.read(path)).decode()

    async def write(self, path: str, data: Body, *, mode: Optional[int] = None) -> Entry:
        return await self._c._run(ops.fs_write(self._id, path, data, mode))

    async def list(self, path: str) -> list[Entry]:
        return await self._c._run(ops.fs_list(self._id, path))

    async def stat(self, path: str) -> Entry:
        return await self._c._run(ops.fs_stat(self._id, path))

    async def mkdir(self, path: str) -> None:
        await self._c._run(ops.fs_mkdir(self._id, path))

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        await self._c._run(ops.fs_remove(self._id, path, recursive))


class AsyncReviews:
    def __init__(self, c: AsyncWarden) -> None:
        self._c = c

    async def submit(self, command: Union[str, list], *, files: Any = (), **options: Any) -> "AsyncReview":
        body = ops.review_body(command, files, options)
        return AsyncReview(self._c, await self._c._run(ops.review_submit(body)))

    async def get(self, review_id: str) -> "AsyncReview":
        return AsyncReview(self._c, await self._c._run(ops.review_get(review_id)))

    def list(self, *, status: Optional[str] = None, limit: int = 100) -> AsyncIterator[ReviewInfo]:
        return self._c._pages(lambda cur: ops.review_page(status, cur, limit))

    async def webhook_secret(self) -> str:
        return await self._c._run(ops.webhook_secret())


class AsyncReview:
    def __init__(self, c: AsyncWarden, info: ReviewInfo) -> None:
        self._c = c
        self.id = info.id
        self.info = info

    async def refresh(self) -> ReviewInfo:
        self.info = await self._c._run(ops.review_get(self.id))
        return self.info

    async def wait(self, timeout: Optional[float] = None, *, poll: float = 0.5) -> ReviewInfo:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (await self.refresh()).ended:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"review {self.id} still {self.info.status} after {timeout} s")
            await asyncio.sleep(poll)
        return self.info

    async def logs(self, *, stream: str = "both") -> str:
        return await self._c._run(ops.review_log(self.id, stream))

    async def follow(self, *, stream: str = "both") -> AsyncIterator[str]:
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        params = {"stream": stream, "follow": "true"}
        async with self._c._http.stream("GET", f"/v1/reviews/{ops.seg(self.id)}/logs", params=params,
                                        timeout=httpx.Timeout(None, connect=10.0)) as r:
            if r.status_code >= 400:
                raise error_for(r.status_code, await r.aread())
            async for piece in r.aiter_bytes():
                if text := dec.decode(piece):
                    yield text

    async def outputs(self) -> list[Output]:
        return await self._c._run(ops.review_outputs(self.id))

    async def read_output(self, path: str) -> bytes:
        return await self._c._run(ops.review_output(self.id, path))

    async def download_output(self, path: str, dest: Union[str, os.PathLike], *, on_progress: Optional[Progress] = None) -> Path:
        return await _adownload(self._c, ops.output_path(self.id, path), Path(dest), on_progress)

    async def cancel(self) -> ReviewInfo:
        self.info = await self._c._run(ops.review_cancel(self.id))
        return self.info

    async def delete_outputs(self) -> dict:
        return await self._c._run(ops.review_delete_outputs(self.id))

    def egress(self, *, after: Optional[int] = None, limit: int = 100) -> AsyncIterator[dict]:
        return self._c._pages(lambda c: ops.egress_page("reviews", self.id, c if c is not None else after, limit))


class AsyncSecrets:
    def __init__(self, c: AsyncWarden) -> None:
        self._c = c

    async def set(self, name: str, value: str, *, replace: bool = False) -> Secret:
        return await self._c._run(ops.secret_set(name, value, replace))

    async def list(self) -> list[Secret]:
        return await self._c._run(ops.secret_list())

    async def delete(self, name: str) -> None:
        await self._c._run(ops.secret_delete(name))
