"""Typed errors: every refusal of the server carries its error code."""

from __future__ import annotations


class WardenError(Exception):
    """An error answer of the Warden API: its HTTP status, its error code
    (``not_found``, ``quota_exceeded``, ``command_denied``...) and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if message else f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message


class BadRequest(WardenError):
    """400: the request is malformed or names something invalid."""


class Unauthorized(WardenError):
    """401: no key, or an invalid or revoked one."""


class Forbidden(WardenError):
    """403: the tenant is disabled."""


class CommandDenied(Forbidden):
    """403 ``command_denied``: the tenant's command policy refused the command."""


class NotFound(WardenError):
    """404: no such thing for this tenant (another tenant's ids answer the same)."""


class Conflict(WardenError):
    """409: the thing is not in a state that allows this (e.g. a stopped sandbox)."""


class Gone(WardenError):
    """410: deleted (a review's outputs and log)."""


class PayloadTooLarge(WardenError):
    """413: over a size limit."""


class UnsupportedMediaType(WardenError):
    """415: an upload of a type the tenant does not accept."""


class Rejected(WardenError):
    """422: an upload refused by its checks (empty, archive limits, malware)."""


class QuotaExceeded(WardenError):
    """429 ``quota_exceeded``: the message names the quota."""


class ServerError(WardenError):
    """500 and other 5xx answers not listed below."""


class Unavailable(WardenError):
    """503: ``unavailable``, ``capacity``, ``secrets_disabled``... (often transient)."""


class StorageFull(WardenError):
    """507: the server's data disk is full; nothing was stored."""


class WardenConnectionError(Exception):
    """The server could not be reached, or the connection broke mid-answer."""


class WebhookSignatureError(Exception):
    """A webhook's signature is missing, malformed, stale or wrong."""


_BY_STATUS: dict[int, type[WardenError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Rejected,
    429: QuotaExceeded,
    503: Unavailable,
    507: StorageFull,
}


def error_for(status: int, body: bytes) -> WardenError:
    """The typed error of an error answer; a body that is not the API's
    error shape (a proxy's page) still gives a useful one."""
    import json

    code, message = "", ""
    try:
        e = json.loads(body)["error"]
        code, message = str(e["code"]), str(e.get("message", ""))
    except (ValueError, KeyError, TypeError):
        code = f"http_{status}"
        message = body[:200].decode("utf-8", "replace").strip()
    if code == "command_denied":
        return CommandDenied(status, code, message)
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else WardenError)
    return cls(status, code, message)
