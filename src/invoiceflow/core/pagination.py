"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from invoiceflow.core.errors import ValidationFailed


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, *, length: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ValidationFailed.field("cursor", "invalid cursor") from exc
    if not isinstance(values, list) or len(values) != length:
        raise ValidationFailed.field("cursor", "invalid cursor")
    return values
