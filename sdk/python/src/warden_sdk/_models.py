"""What the API answers, as typed objects. Each keeps the whole answer in
``raw``, so fields a newer server adds are not lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


def _pick(cls, d: dict[str, Any]):
    names = cls.__dataclass_fields__.keys()
    return cls(**{k: d.get(k) for k in names if k != "raw"}, raw=d)


@dataclass
class File:
    """An uploaded file; pass it (or its id) to sandboxes and reviews."""

    id: str
    name: str
    size: int
    sha256: str
    content_type: str
    created_at: str
    scan: Optional[str] = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "File":
        return _pick(cls, d)


@dataclass
class UploadUrl:
    """A signed URL anyone may ``PUT`` the file's bytes to until it expires."""

    url: str
    method: str
    expires_at: str
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "UploadUrl":
        return _pick(cls, d)


@dataclass
class Limits:
    """A sandbox's or job's resource limits (unset: the server's defaults)."""

    memory_mb: Optional[int] = None
    cpus: Optional[float] = None
    pids: Optional[int] = None
    disk_mb: Optional[int] = None

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class SandboxInfo:
    """A sandbox's record as the server keeps it."""

    id: str
    state: str
    image: str
    isolation: str
    labels: dict
    limits: dict
    files: list
    secrets: list
    network: dict
    created_at: str
    expires_at: str
    ended_at: Optional[str] = None
    end_reason: Optional[str] = None
    usage: Optional[dict] = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "SandboxInfo":
        return _pick(cls, d)


@dataclass
class ExecResult:
    """How a command ended and what it printed. ``exit_code`` is None when a
    signal ended it (``signal``) or it timed out (``timed_out``)."""

    exit_code: Optional[int]
    stdout: str
    stderr: str
    signal: Optional[int] = None
    timed_out: bool = False
    pid: Optional[int] = None
    truncated: bool = False
    truncated_by: Optional[str] = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "ExecResult":
        d = dict(d)
        d.setdefault("timed_out", False)
        d.setdefault("truncated", False)
        return _pick(cls, d)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Entry:
    """A directory entry inside a sandbox."""

    name: str
    kind: str
    size: int
    mode: int
    mtime: int
    link_target: Optional[str] = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "Entry":
        return _pick(cls, d)


@dataclass
class Output:
    """One file a review job left in ``/output``."""

    path: str
    size: int
    sha256: str
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "Output":
        return _pick(cls, d)


ENDED = ("succeeded", "failed", "cancelled", "timed_out")


@dataclass
class ReviewInfo:
    """A review job's record."""

    id: str
    status: str
    image: str
    created_at: str
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    attempts: int = 0
    exit_code: Optional[int] = None
    signal: Optional[int] = None
    error: Optional[str] = None
    outputs: list = field(default_factory=list)
    outputs_truncated: bool = False
    log_truncated: bool = False
    labels: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "ReviewInfo":
        r = _pick(cls, d)
        r.outputs = [Output.from_json(o) for o in d.get("outputs") or []]
        return r

    @property
    def ended(self) -> bool:
        return self.status in ENDED


@dataclass
class Secret:
    name: str
    created_at: str
    updated_at: Optional[str] = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "Secret":
        return _pick(cls, d)


@dataclass
class AuditEntry:
    seq: int
    actor: str
    action: str
    target: str
    outcome: str
    at: str
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "AuditEntry":
        return _pick(cls, d)


@dataclass
class Usage:
    sandboxes: int
    cpu_seconds: float
    wall_seconds: float
    max_peak_memory_bytes: int
    storage_bytes: int
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, d: dict) -> "Usage":
        return _pick(cls, d)


def allowlist(*hosts: str) -> dict:
    """A network setting that lets a sandbox or job reach only these hosts
    (``"pypi.org"``, ``"*.github.com"``; ports 443 and 80)."""
    return {"mode": "allowlist", "rules": [{"host": h} for h in hosts]}
