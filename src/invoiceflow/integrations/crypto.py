"""Encryption of integration credentials at rest (Fernet: AES-128-CBC + HMAC-SHA256, from `cryptography`).

The key is `INVOICEFLOW_ENCRYPTION_KEY` when set: one or more comma-separated Fernet keys (or any strings,
which are stretched with HKDF), the first encrypting and all decrypting, so a key can be rotated by putting the
new one first. Unset, the key is derived with HKDF from the signing secret (`resolved_secret_key`): then
changing the signing secret makes stored credentials unreadable, and integrations must be saved again.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from invoiceflow.core.errors import AppError
from invoiceflow.core.settings import Settings

_INFO = b"invoiceflow integration secrets v1"


class SecretsUnreadable(AppError):
    """Stored credentials cannot be decrypted with the configured key (it changed)."""

    status_code = 409
    code = "INTEGRATION_SECRETS_UNREADABLE"


def _derive(material: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(material.encode()))


def _fernet_key(value: str) -> bytes:
    """A Fernet key as given (32 url-safe base64 bytes), else one derived from the string."""
    try:
        if len(base64.urlsafe_b64decode(value.encode())) == 32:
            return value.encode()
    except (binascii.Error, ValueError):
        pass
    return _derive(value)


@lru_cache(maxsize=8)
def _cipher(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def cipher_for(settings: Settings) -> MultiFernet:
    if settings.encryption_key is not None:
        raw = [part.strip() for part in settings.encryption_key.get_secret_value().split(",") if part.strip()]
        if raw:
            return _cipher(tuple(_fernet_key(part) for part in raw))
    return _cipher((_derive(settings.resolved_secret_key()),))


def encrypt_secrets(settings: Settings, secrets: dict[str, Any]) -> str | None:
    """The secrets as a Fernet token, or None when there are none."""
    if not any(secrets.values()):
        return None
    return cipher_for(settings).encrypt(orjson.dumps(secrets, option=orjson.OPT_SORT_KEYS)).decode()


def decrypt_secrets(settings: Settings, token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        value = orjson.loads(cipher_for(settings).decrypt(token.encode()))
    except InvalidToken:
        raise SecretsUnreadable(
            "The integration's stored credentials cannot be decrypted with the configured key; "
            "set INVOICEFLOW_ENCRYPTION_KEY back, or save the credentials again",
        ) from None
    return value if isinstance(value, dict) else {}
