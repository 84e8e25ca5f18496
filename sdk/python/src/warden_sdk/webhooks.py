"""Checking that a webhook came from your Warden server."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any, Optional, Union

from ._errors import WebhookSignatureError


def verify_webhook(
    body: Union[bytes, str],
    signature: Optional[str],
    secret: str,
    *,
    tolerance: float = 300.0,
    now: Optional[float] = None,
) -> Any:
    """Checks ``X-Warden-Signature`` (``t=<unix seconds>,v1=<hex>``, an
    HMAC-SHA256 of ``"<t>.<body>"`` under the tenant's webhook secret) over
    the raw request ``body`` and returns the event, decoded. Raises
    ``WebhookSignatureError`` if the header is missing or malformed, the
    signature does not match, or it is older (or newer) than ``tolerance``
    seconds, which stops a captured delivery from being replayed later."""
    if not signature:
        raise WebhookSignatureError("no X-Warden-Signature header")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    fields: dict[str, list[str]] = {}
    for part in signature.split(","):
        k, _, v = part.strip().partition("=")
        fields.setdefault(k, []).append(v)
    try:
        t = int(fields["t"][0])
    except (KeyError, ValueError, IndexError):
        raise WebhookSignatureError("the signature header has no valid t=") from None
    if abs((time.time() if now is None else now) - t) > tolerance:
        raise WebhookSignatureError(f"the signature's time {t} is outside the {tolerance} s tolerance")
    mac = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(mac, v) for v in fields.get("v1", [])):
        raise WebhookSignatureError("the signature does not match the body")
    return json.loads(raw)
