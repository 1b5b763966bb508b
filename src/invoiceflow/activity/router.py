from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep, AdminDep
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.models import AuditLog, DomainEvent
from invoiceflow.core.pagination import decode_cursor, encode_cursor
from invoiceflow.core.runtime import SessionDep
from invoiceflow.core.schemas import InputModel, OutputModel

router = APIRouter(prefix="/api/v1", tags=["activity"])


class EventRead(OutputModel):
    id: uuid.UUID
    seq: int
    type: str
    resource_type: str
    resource_id: str
    payload: dict[str, Any]
    occurred_at: datetime


class EventFilters(InputModel):
    type: Annotated[str | None, Field(max_length=64)] = None
    resource_type: Annotated[str | None, Field(max_length=32)] = None
    resource_id: Annotated[str | None, Field(max_length=64)] = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    cursor: Annotated[str | None, Field(max_length=200)] = None


class EventPage(OutputModel):
    items: list[EventRead]
    next_cursor: str | None
    limit: int


class AuditRead(OutputModel):
    id: uuid.UUID
    seq: int
    actor_user_id: uuid.UUID | None
    actor_api_key_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: str | None
    ip_address: str | None
    user_agent: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditFilters(InputModel):
    action: Annotated[str | None, Field(max_length=64)] = None
    resource_type: Annotated[str | None, Field(max_length=32)] = None
    resource_id: Annotated[str | None, Field(max_length=64)] = None
    actor_user_id: uuid.UUID | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    cursor: Annotated[str | None, Field(max_length=200)] = None


class AuditPage(OutputModel):
    items: list[AuditRead]
    next_cursor: str | None
    limit: int


def _after(cursor: str | None) -> int | None:
    if not cursor:
        return None
    (seq,) = decode_cursor(cursor, length=1)
    if not isinstance(seq, int):
        from invoiceflow.core.errors import ValidationFailed

        raise ValidationFailed.field("cursor", "invalid cursor")
    return seq


@router.get("/events", response_model=Envelope[EventPage])
async def list_events(actor: ActorDep, session: SessionDep, f: Annotated[EventFilters, Query()]) -> Response:
    """The organisation's event log in the order it happened; follow `next_cursor` to read on."""
    stmt = select(DomainEvent).where(DomainEvent.organization_id == actor.organization_id)
    after = _after(f.cursor)
    if after is not None:
        stmt = stmt.where(DomainEvent.seq > after)
    if f.type:
        stmt = stmt.where(DomainEvent.type == f.type)
    if f.resource_type:
        stmt = stmt.where(DomainEvent.resource_type == f.resource_type)
    if f.resource_id:
        stmt = stmt.where(DomainEvent.resource_id == f.resource_id)
    rows = list((await session.execute(stmt.order_by(DomainEvent.seq).limit(f.limit + 1))).scalars())
    cursor = encode_cursor([rows[f.limit - 1].seq]) if len(rows) > f.limit else None
    return envelope(
        EventPage(items=[EventRead.model_validate(r) for r in rows[: f.limit]], next_cursor=cursor, limit=f.limit)
    )


@router.get("/audit-logs", response_model=Envelope[AuditPage])
async def list_audit_logs(actor: AdminDep, session: SessionDep, f: Annotated[AuditFilters, Query()]) -> Response:
    """Newest first. Admins only."""
    stmt = select(AuditLog).where(AuditLog.organization_id == actor.organization_id)
    before = _after(f.cursor)
    if before is not None:
        stmt = stmt.where(AuditLog.seq < before)
    if f.action:
        stmt = stmt.where(AuditLog.action == f.action)
    if f.resource_type:
        stmt = stmt.where(AuditLog.resource_type == f.resource_type)
    if f.resource_id:
        stmt = stmt.where(AuditLog.resource_id == f.resource_id)
    if f.actor_user_id:
        stmt = stmt.where(AuditLog.actor_user_id == f.actor_user_id)
    rows = list((await session.execute(stmt.order_by(AuditLog.seq.desc()).limit(f.limit + 1))).scalars())
    cursor = encode_cursor([rows[f.limit - 1].seq]) if len(rows) > f.limit else None
    return envelope(
        AuditPage(items=[AuditRead.model_validate(r) for r in rows[: f.limit]], next_cursor=cursor, limit=f.limit)
    )
