"""`Idempotency-Key` on creating POSTs: same key and body replays the first response.

The record is inserted before the work is done. A concurrent request with the same key blocks on
the primary key until the first commits, then fails the insert and replays the stored response.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson
from fastapi import Header
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.errors import Conflict, ValidationFailed
from invoiceflow.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def fingerprint(endpoint: str, body: Any) -> str:
    return hashlib.sha256(endpoint.encode() + b"\n" + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Replay(Exception):
    """Raised to short-circuit a request whose key was seen: carries the first response."""

    def __init__(self, status_code: int, body: Any) -> None:
        super().__init__("idempotent replay")
        self.status_code = status_code
        self.body = body


async def begin(
    session: AsyncSession, organization_id: uuid.UUID, key: str | None, endpoint: str, body: Any
) -> IdempotencyRecord | None:
    """Claim `key` for this request, or raise Replay with the first response."""
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed.field("Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} printable characters")
    digest = fingerprint(endpoint, body)
    existing = await _load(session, organization_id, key)
    if existing is None:
        record = IdempotencyRecord(organization_id=organization_id, key=key, endpoint=endpoint, request_hash=digest)
        try:
            async with session.begin_nested():
                session.add(record)
                await session.flush()
            return record
        except IntegrityError:
            existing = await _load(session, organization_id, key)
            if existing is None:  # pragma: no cover - the winner rolled back; let the client retry
                raise Conflict(
                    "A request with this Idempotency-Key is in progress", code="IDEMPOTENCY_IN_PROGRESS"
                ) from None
    if existing.request_hash != digest or existing.endpoint != endpoint:
        raise ValidationFailed(
            "Idempotency-Key was already used with a different request",
            code="IDEMPOTENCY_KEY_REUSED",
            details={"fields": [{"field": "Idempotency-Key", "message": "reused with another request body"}]},
        )
    if existing.status_code is None:
        raise Conflict("A request with this Idempotency-Key is in progress", code="IDEMPOTENCY_IN_PROGRESS")
    raise Replay(existing.status_code, existing.response_body)


def complete(record: IdempotencyRecord | None, status_code: int, body: Any) -> None:
    if record is None:
        return
    record.status_code = status_code
    record.response_body = body


async def _load(session: AsyncSession, organization_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
    stmt = select(IdempotencyRecord).where(
        IdempotencyRecord.organization_id == organization_id, IdempotencyRecord.key == key
    )
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()


HEADER = Header(
    alias="Idempotency-Key",
    description="Retrying a creating POST with the same key and body returns the first response.",
)
