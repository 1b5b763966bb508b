"""Webhook endpoint and delivery-log use cases. Admins change endpoints; members read them."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import Conflict, NotFound, ValidationFailed
from invoiceflow.core.listing import page_by_created_at
from invoiceflow.core.records import record_audit, record_event
from invoiceflow.webhooks.fanout import TEST_EVENT_TYPE, current_max_seq
from invoiceflow.webhooks.guard import UrlRefused, check_url
from invoiceflow.webhooks.models import WebhookDelivery, WebhookEndpoint
from invoiceflow.webhooks.schemas import DeliveryFilters, WebhookCreate, WebhookFilters, WebhookRead, WebhookUpdate

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def mask_secret(secret: str) -> str:
    """Enough to tell two secrets apart, not enough to sign with."""
    prefix = SECRET_PREFIX if secret.startswith(SECRET_PREFIX) else ""
    return f"{prefix}…{secret[-4:]}"


def to_read(endpoint: WebhookEndpoint, *, reveal: bool = False) -> WebhookRead:
    read = WebhookRead.model_validate(endpoint)
    return read if reveal else read.model_copy(update={"secret": mask_secret(endpoint.secret)})


def _not_found() -> NotFound:
    return NotFound("Webhook not found", code="WEBHOOK_NOT_FOUND")


async def _checked_url(url: str, *, allow_private: bool) -> str:
    try:
        return await check_url(url, allow_private=allow_private)
    except UrlRefused as exc:
        raise ValidationFailed.field("url", str(exc)) from None


async def create_webhook(
    session: AsyncSession, actor: Actor, data: WebhookCreate, *, allow_private: bool
) -> WebhookEndpoint:
    url = await _checked_url(data.url, allow_private=allow_private)
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        url=url,
        description=data.description,
        event_types=sorted(set(data.event_types)),
        secret=data.secret or generate_secret(),
        enabled=data.enabled,
        # It receives the events recorded from now on, not the organisation's history.
        fanout_floor_seq=await current_max_seq(session),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    record_audit(
        session,
        actor,
        action="webhook.create",
        resource_type="webhook",
        resource_id=endpoint.id,
        details={"url": url, "event_types": endpoint.event_types, "enabled": endpoint.enabled},
    )
    return endpoint


async def get_webhook(session: AsyncSession, actor: Actor, webhook_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, webhook_id)
    if endpoint is None or endpoint.organization_id != actor.organization_id or endpoint.deleted_at is not None:
        raise _not_found()
    return endpoint


async def list_webhooks(
    session: AsyncSession, actor: Actor, filters: WebhookFilters
) -> tuple[list[WebhookEndpoint], str | None]:
    stmt = select(WebhookEndpoint).where(
        WebhookEndpoint.organization_id == actor.organization_id, WebhookEndpoint.deleted_at.is_(None)
    )
    if filters.enabled is not None:
        stmt = stmt.where(WebhookEndpoint.enabled.is_(filters.enabled))
    return await page_by_created_at(session, stmt, WebhookEndpoint, cursor=filters.cursor, limit=filters.limit)


async def update_webhook(
    session: AsyncSession, actor: Actor, webhook_id: uuid.UUID, data: WebhookUpdate, *, allow_private: bool
) -> WebhookEndpoint:
    endpoint = await get_webhook(session, actor, webhook_id)
    changes = data.model_dump(exclude_unset=True)
    for field in ("url", "event_types", "enabled"):
        if field in changes and changes[field] is None:
            raise ValidationFailed.field(field, "may not be null")
    if "url" in changes:
        endpoint.url = await _checked_url(changes["url"], allow_private=allow_private)
    if "description" in changes:
        endpoint.description = changes["description"]
    if "event_types" in changes:
        endpoint.event_types = sorted(set(changes["event_types"]))
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
    endpoint.updated_at = utcnow()
    await session.flush()
    record_audit(
        session,
        actor,
        action="webhook.update",
        resource_type="webhook",
        resource_id=endpoint.id,
        details={"changed": sorted(changes)},
    )
    return endpoint


async def delete_webhook(session: AsyncSession, actor: Actor, webhook_id: uuid.UUID) -> WebhookEndpoint:
    """Soft delete: the endpoint stops receiving; its delivery log stays for the audit trail."""
    endpoint = await get_webhook(session, actor, webhook_id)
    endpoint.deleted_at = endpoint.updated_at = utcnow()
    await session.flush()
    record_audit(session, actor, action="webhook.delete", resource_type="webhook", resource_id=endpoint.id)
    return endpoint


async def rotate_secret(session: AsyncSession, actor: Actor, webhook_id: uuid.UUID) -> WebhookEndpoint:
    """A new secret, effective for the next attempt of every delivery (the old one stops working)."""
    endpoint = await get_webhook(session, actor, webhook_id)
    endpoint.secret = generate_secret()
    endpoint.updated_at = utcnow()
    await session.flush()
    record_audit(session, actor, action="webhook.rotate_secret", resource_type="webhook", resource_id=endpoint.id)
    return endpoint


async def list_deliveries(
    session: AsyncSession, actor: Actor, webhook_id: uuid.UUID, filters: DeliveryFilters
) -> tuple[list[WebhookDelivery], str | None]:
    """The endpoint's delivery log, newest first."""
    endpoint = await get_webhook(session, actor, webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if filters.status:
        stmt = stmt.where(WebhookDelivery.status == filters.status)
    return await page_by_created_at(session, stmt, WebhookDelivery, cursor=filters.cursor, limit=filters.limit)


async def get_delivery(
    session: AsyncSession, actor: Actor, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    endpoint = await get_webhook(session, actor, webhook_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("Webhook delivery not found", code="WEBHOOK_DELIVERY_NOT_FOUND")
    return delivery


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Conflict("The webhook is disabled; enable it first", code="WEBHOOK_DISABLED")


async def redeliver(
    session: AsyncSession, actor: Actor, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Due now again, with a fresh retry schedule, whatever its status (a receiver may have lost a
    delivery it acknowledged). The event id is unchanged, so receivers can still deduplicate."""
    delivery = await get_delivery(session, actor, webhook_id, delivery_id)
    endpoint = await get_webhook(session, actor, webhook_id)
    _require_enabled(endpoint)
    previous = {"status": delivery.status, "attempts": delivery.attempts}
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    await session.flush()
    record_audit(
        session,
        actor,
        action="webhook.redeliver",
        resource_type="webhook_delivery",
        resource_id=delivery.id,
        details={"webhook_id": str(endpoint.id), "event_id": str(delivery.event_id), "previous": previous},
    )
    return delivery


async def send_test(session: AsyncSession, actor: Actor, webhook_id: uuid.UUID) -> WebhookDelivery:
    """A `WebhookTest` event, delivered to this endpoint only (by the scheduler, like any delivery)."""
    endpoint = await get_webhook(session, actor, webhook_id)
    _require_enabled(endpoint)
    event = record_event(
        session,
        organization_id=actor.organization_id,
        type=TEST_EVENT_TYPE,
        resource_type="webhook",
        resource_id=endpoint.id,
        payload={"webhook_id": str(endpoint.id), "message": "A test delivery from invoiceflow"},
    )
    await session.flush()
    now = utcnow()
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        endpoint_id=endpoint.id,
        event_id=event.id,
        event_type=event.type,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    record_audit(
        session,
        actor,
        action="webhook.test",
        resource_type="webhook",
        resource_id=endpoint.id,
        details={"delivery_id": str(delivery.id), "event_id": str(event.id)},
    )
    return delivery
