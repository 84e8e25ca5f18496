"""What the sync and async clients share: each API call written once as a
generator that yields the request it needs and returns the typed result
from the answer it is sent back (``_Warden._run`` / ``_AsyncWarden._run``
drive it), the retry rule, path building and the SSE parser."""

from __future__ import annotations

import base64
import json
import os
import random
from dataclasses import dataclass, field
from typing import Any, Generator, Iterable, Optional, Union
from urllib.parse import quote

from ._errors import WardenError, error_for

DEFAULT_URL = "http://127.0.0.1:7300"
#: Statuses worth another try for a call that is safe to repeat.
RETRY_STATUSES = (502, 503, 504)
#: 503 codes that say "later" (others, such as secrets_disabled, will not change).
RETRY_503_CODES = ("unavailable", "capacity", "http_503")


@dataclass
class Req:
    method: str
    path: str
    params: dict = field(default_factory=dict)
    json: Any = None
    #: bytes, or an iterable of bytes (a streamed upload).
    content: Any = None
    headers: dict = field(default_factory=dict)
    #: Safe to send again after a failure that may or may not have reached
    #: the server (GET, PUT, DELETE; a POST only when it says so).
    idempotent: Optional[bool] = None

    def repeatable(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in ("GET", "HEAD", "PUT", "DELETE")


@dataclass
class Resp:
    status: int
    headers: Any
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None


Op = Generator[Req, Resp, Any]


def settings(url: Optional[str], api_key: Optional[str]) -> tuple[str, str]:
    url = (url or os.environ.get("WARDEN_URL") or DEFAULT_URL).rstrip("/")
    key = api_key or os.environ.get("WARDEN_API_KEY")
    if not key:
        raise ValueError("no API key: pass api_key= or set WARDEN_API_KEY")
    return url, key


def seg(s: str) -> str:
    """One path segment, percent-encoded: an id can never climb out of it."""
    return quote(str(s), safe="")


def check(resp: Resp) -> Resp:
    if resp.status >= 400:
        raise error_for(resp.status, resp.content)
    return resp


def should_retry(req: Req, status: Optional[int], body: bytes = b"") -> bool:
    if not req.repeatable():
        return False
    if status is None:
        return True  # the connection failed
    if status not in RETRY_STATUSES:
        return False
    if status == 503:
        err = error_for(status, body)
        return err.code in RETRY_503_CODES
    return True


def backoff(attempt: int, retry_after: Optional[str]) -> float:
    if retry_after:
        try:
            return min(float(retry_after), 10.0)
        except ValueError:
            pass
    return min(0.25 * (2**attempt), 4.0) * (0.5 + random.random() / 2)


def file_ids(files: Iterable[Any]) -> list[str]:
    return [f if isinstance(f, str) else f.id for f in files or []]


Body = Union[bytes, str]


def as_bytes(data: Body) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


class SseParser:
    """Incremental ``text/event-stream`` parsing: feed bytes, get
    ``(event, data)`` pairs. Holds at most one unfinished line."""

    def __init__(self, max_line: int = 8 << 20) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []
        self._max = max_line

    def feed(self, chunk: bytes) -> list[tuple[str, Any]]:
        self._buf += chunk
        out = []
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                if len(self._buf) > self._max:
                    raise WardenError(0, "bad_stream", "an SSE line is too long")
                return out
            line = self._buf[:i].rstrip(b"\r").decode("utf-8", "replace")
            self._buf = self._buf[i + 1 :]
            if line.startswith("event:"):
                self._event = line[6:].strip()
            elif line.startswith("data:"):
                self._data.append(line[5:].removeprefix(" "))
            elif line == "" and self._event:
                raw = "\n".join(self._data)
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = raw
                out.append((self._event, data))
                self._event, self._data = "", []


def decode_output(data: dict) -> bytes:
    return base64.b64decode(data.get("data", ""))
