"""Webhook signatures, and the check a receiver runs.

Every delivery is a POST whose body is the JSON event `{id, type, created_at, organization_id, data}`
with these headers:

- `X-Invoiceflow-Event-Id`: the event id. A delivery may arrive more than once (retries are at least
  once, a redeliver sends it again): receivers deduplicate on this id.
- `X-Invoiceflow-Event-Type`: e.g. `InvoiceCreated`.
- `X-Invoiceflow-Timestamp`: when this attempt was signed, in Unix seconds.
- `X-Invoiceflow-Signature`: `v1=<hex HMAC-SHA256 of "{timestamp}.{body}" keyed with the endpoint secret>`.

Verifying a delivery (receivers): take the raw request body exactly as received (before any JSON
parsing), the timestamp header and the signature header, and call
`verify_signature(secret, timestamp, body, signature_header)`. It recomputes the HMAC over
`f"{timestamp}.".encode() + body`, compares it in constant time with every `v1=` value of the header
(a comma-separated header may carry several), and refuses a timestamp more than `tolerance` seconds
(default 300) away from the receiver's clock, so that a captured request cannot be replayed later. The
same check in another language: HMAC-SHA256(secret, timestamp + "." + raw_body), lowercase hex, compared
with a constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_VERSION = "v1"
EVENT_ID_HEADER = "X-Invoiceflow-Event-Id"
EVENT_TYPE_HEADER = "X-Invoiceflow-Event-Type"
TIMESTAMP_HEADER = "X-Invoiceflow-Timestamp"
SIGNATURE_HEADER = "X-Invoiceflow-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def compute_signature(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed with `secret`."""
    message = str(timestamp).encode() + b"." + _as_bytes(body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"{SIGNATURE_VERSION}={compute_signature(secret, timestamp, body)}"


def signed_headers(*, secret: str, event_id: str, event_type: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secret, timestamp, body),
    }


def verify_signature(
    secret: str,
    timestamp: str | int | None,
    body: bytes | str,
    header: str | None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """True when `header` holds a `v1` signature of `body` at `timestamp` made with `secret`, and the
    timestamp is within `tolerance` seconds of `now` (default: this machine's clock)."""
    if not secret or timestamp is None or not header:
        return False
    text = str(timestamp).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return False
    current = time.time() if now is None else now
    if abs(current - int(text)) > tolerance:
        return False
    # Signed over the header exactly as sent: no second spelling of one timestamp is accepted.
    expected = compute_signature(secret, text, body)
    valid = False
    for part in header.split(","):
        version, _, value = part.strip().partition("=")
        # Every candidate is compared, so the time taken does not say which one matched.
        if version == SIGNATURE_VERSION and hmac.compare_digest(value.strip().encode(), expected.encode()):
            valid = True
    return valid
