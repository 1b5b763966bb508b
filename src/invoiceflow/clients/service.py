"""Client use cases."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.clients.models import Client
from invoiceflow.clients.schemas import ClientCreate, ClientFilters, ClientUpdate
from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import Conflict, NotFound, ValidationFailed
from invoiceflow.core.listing import page_by_created_at
from invoiceflow.core.records import record_audit, record_event


def _email_conflict(email: str | None) -> Conflict:
    return Conflict(
        "A client with this email already exists",
        code="DUPLICATE_CLIENT_EMAIL",
        details={"field": "email", "email": email},
    )


async def _email_in_use(session: AsyncSession, org_id: uuid.UUID, email: str, exclude: uuid.UUID | None = None) -> bool:
    stmt = select(Client.id).where(Client.organization_id == org_id, Client.email == email, Client.deleted_at.is_(None))
    if exclude is not None:
        stmt = stmt.where(Client.id != exclude)
    return (await session.execute(stmt.limit(1))).first() is not None


def _address(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return {k: v for k, v in value.model_dump().items() if v is not None} if hasattr(value, "model_dump") else value


async def create_client(session: AsyncSession, actor: Actor, data: ClientCreate) -> Client:
    email = str(data.email).lower()
    if await _email_in_use(session, actor.organization_id, email):
        raise _email_conflict(email)
    client = Client(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        **data.model_dump(exclude={"email", "address", "shipping_address"}),
        email=email,
        address=_address(data.address),
        shipping_address=_address(data.shipping_address),
        country=data.address.country,
    )
    session.add(client)
    try:
        await session.flush()
    except IntegrityError:
        raise _email_conflict(email) from None
    record_event(
        session,
        organization_id=actor.organization_id,
        type="ClientCreated",
        resource_type="client",
        resource_id=client.id,
        payload={"client_id": str(client.id), "name": client.name, "email": email},
    )
    record_audit(session, actor, action="client.create", resource_type="client", resource_id=client.id)
    return client


async def get_client(session: AsyncSession, actor: Actor, client_id: uuid.UUID) -> Client:
    client = await session.get(Client, client_id)
    if client is None or client.organization_id != actor.organization_id or client.deleted_at is not None:
        raise NotFound("Client not found", code="CLIENT_NOT_FOUND")
    return client


async def list_clients(session: AsyncSession, actor: Actor, filters: ClientFilters) -> tuple[list[Client], str | None]:
    stmt = select(Client).where(Client.organization_id == actor.organization_id, Client.deleted_at.is_(None))
    if filters.q:
        needle = filters.q.lower()
        stmt = stmt.where(
            or_(
                func.lower(Client.name).contains(needle, autoescape=True),
                func.lower(Client.email).contains(needle, autoescape=True),
            )
        )
    if filters.country:
        stmt = stmt.where(Client.country == filters.country)
    return await page_by_created_at(session, stmt, Client, cursor=filters.cursor, limit=filters.limit)


async def update_client(session: AsyncSession, actor: Actor, client_id: uuid.UUID, data: ClientUpdate) -> Client:
    client = await get_client(session, actor, client_id)
    changes = data.model_dump(exclude_unset=True)
    for field in ("name", "email", "address", "language"):
        if field in changes and changes[field] is None:
            raise ValidationFailed.field(field, "may not be null")
    if "email" in changes:
        email = str(changes["email"]).lower()
        if await _email_in_use(session, actor.organization_id, email, exclude=client.id):
            raise _email_conflict(email)
        client.email = email
    if "address" in changes:
        client.address = _address(data.address) or {}
        client.country = data.address.country  # type: ignore[union-attr]
    if "shipping_address" in changes:
        client.shipping_address = _address(data.shipping_address)
    for field, value in changes.items():
        if field not in ("email", "address", "shipping_address"):
            setattr(client, field, value)
    client.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError:
        raise _email_conflict(client.email) from None
    record_event(
        session,
        organization_id=actor.organization_id,
        type="ClientUpdated",
        resource_type="client",
        resource_id=client.id,
        payload={"client_id": str(client.id), "changed": sorted(changes)},
    )
    record_audit(
        session,
        actor,
        action="client.update",
        resource_type="client",
        resource_id=client.id,
        details={"changed": sorted(changes)},
    )
    return client


async def delete_client(session: AsyncSession, actor: Actor, client_id: uuid.UUID) -> Client:
    client = await get_client(session, actor, client_id)
    client.deleted_at = utcnow()
    record_event(
        session,
        organization_id=actor.organization_id,
        type="ClientDeleted",
        resource_type="client",
        resource_id=client.id,
        payload={"client_id": str(client.id)},
    )
    record_audit(session, actor, action="client.delete", resource_type="client", resource_id=client.id)
    await session.flush()
    return client
