"""Writers for the event log and the audit log. Both are called inside the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.models import AuditLog, DomainEvent


def record_event(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    type: str,
    resource_type: str,
    resource_id: uuid.UUID | str,
    payload: dict[str, Any],
    event_id: uuid.UUID | None = None,
) -> DomainEvent:
    """Add an event row. A caller that may run twice (a workflow step) passes a deterministic `event_id`,
    so the second insert fails on the primary key instead of recording the event twice."""
    event = DomainEvent(
        id=event_id or uuid.uuid4(),
        organization_id=organization_id,
        type=type,
        resource_type=resource_type,
        resource_id=str(resource_id),
        payload=payload,
    )
    session.add(event)
    return event


def audit_values(
    actor: Actor,
    *,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An audit row as column values, for callers that insert with Core on hot paths."""
    return {
        "id": uuid.uuid4(),
        "organization_id": actor.organization_id,
        "actor_user_id": actor.user_id,
        "actor_api_key_id": actor.api_key_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": None if resource_id is None else str(resource_id),
        "ip_address": actor.ip_address,
        "user_agent": (actor.user_agent or "")[:500] or None,
        "details": details or {},
        "created_at": utcnow(),
    }


def record_audit(
    session: AsyncSession,
    actor: Actor,
    *,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    row = AuditLog(
        **audit_values(actor, action=action, resource_type=resource_type, resource_id=resource_id, details=details)
    )
    session.add(row)
    return row
