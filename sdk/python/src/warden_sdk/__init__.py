"""Warden's Python SDK: sandboxes, uploads, review jobs, secrets, audit and
usage over Warden's HTTP API (``/v1``), sync (``Warden``) and async
(``AsyncWarden``)."""

from ._async import AsyncProcess, AsyncReview, AsyncSandbox, AsyncWarden
from ._errors import (
    BadRequest,
    CommandDenied,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    Rejected,
    ServerError,
    StorageFull,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    WardenConnectionError,
    WardenError,
    WebhookSignatureError,
)
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
    allowlist,
)
from ._sync import Process, Review, Sandbox, Warden
from .webhooks import verify_webhook

__all__ = [name for name in dir() if not name.startswith("_")]
__version__ = "0.1.0"
