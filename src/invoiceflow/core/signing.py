"""Expiring download links for files the application serves itself (local storage).

S3 signs its own links; a local folder cannot, so the application hands out a token that names the
organisation, the storage key, the file name and an expiry, authenticated with HMAC-SHA256. Whoever holds
the token can download that one file until it expires, without a session: it can be pasted into a
browser or an email. The route must still check that the organisation in the token owns the file.

Token: `<payload>.<mac>`, both base64url without padding; the payload is compact JSON. The MAC covers
the payload exactly as transmitted, so there is no canonical form to get wrong, and the signature is
compared as text so that no two spellings of one MAC are accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from invoiceflow.core.errors import Forbidden

TOKEN_VERSION = 1
MAX_TOKEN_LENGTH = 4096
# Domain separation: the secret key also signs JWTs; a key derived for this one purpose means a token
# of one kind can never be replayed as the other.
_PURPOSE = b"invoiceflow/download-link/v1"


class DownloadLinkInvalid(Forbidden):
    code = "DOWNLOAD_LINK_INVALID"

    def __init__(self, message: str = "This download link is not valid", **kw: Any) -> None:
        super().__init__(message, **kw)


class DownloadLinkExpired(DownloadLinkInvalid):
    code = "DOWNLOAD_LINK_EXPIRED"

    def __init__(self, message: str = "This download link has expired", **kw: Any) -> None:
        super().__init__(message, **kw)


@dataclass(frozen=True, slots=True)
class SignedDownload:
    organization_id: uuid.UUID
    key: str
    expires_at: datetime
    filename: str

    def require_organization(self, organization_id: uuid.UUID) -> None:
        """Refuse a link issued for another organisation than the one that owns the file."""
        if not hmac.compare_digest(self.organization_id.bytes, organization_id.bytes):
            raise DownloadLinkInvalid()


def sign_download(secret_key: str, *, organization_id: uuid.UUID, key: str, expires_at: datetime, filename: str) -> str:
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    payload = {
        "v": TOKEN_VERSION,
        "o": str(organization_id),
        "k": key,
        # Whole seconds, rounded down: the link never outlives the expiry the caller asked for.
        "e": int(expires_at.timestamp()),
        "f": filename,
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
    token = f"{body}.{_mac(secret_key, body)}"
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError("download token would be too long: shorten the file name or the key")
    return token


def verify_download(secret_key: str, token: str, *, now: datetime) -> SignedDownload:
    """Return what the token grants, or raise `DownloadLinkInvalid` / `DownloadLinkExpired` (both 403)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise DownloadLinkInvalid()
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature:
        raise DownloadLinkInvalid()
    # The MAC is checked before anything in the payload is parsed or believed.
    if not hmac.compare_digest(_mac(secret_key, body).encode("ascii"), signature.encode("ascii")):
        raise DownloadLinkInvalid()
    try:
        payload = json.loads(_b64decode(body))
        if payload["v"] != TOKEN_VERSION:
            raise DownloadLinkInvalid()
        grant = SignedDownload(
            organization_id=uuid.UUID(payload["o"]),
            key=_text(payload["k"]),
            expires_at=datetime.fromtimestamp(_integer(payload["e"]), UTC),
            filename=_text(payload["f"]),
        )
    except (ValueError, TypeError, KeyError, OverflowError, binascii.Error):
        # Only reachable with a valid MAC, i.e. a token we signed with a different layout.
        raise DownloadLinkInvalid() from None
    if now >= grant.expires_at:
        raise DownloadLinkExpired(details={"expired_at": grant.expires_at.isoformat()})
    return grant


def _derived_key(secret_key: str) -> bytes:
    if not secret_key:
        raise ValueError("the secret key is empty")
    return hmac.new(secret_key.encode("utf-8"), _PURPOSE, hashlib.sha256).digest()


def _mac(secret_key: str, body: str) -> str:
    return _b64encode(hmac.new(_derived_key(secret_key), body.encode("ascii"), hashlib.sha256).digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _integer(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value
