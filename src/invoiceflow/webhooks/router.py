from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep, AdminDep
from invoiceflow.core import idempotency
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.runtime import RuntimeDep, SessionDep
from invoiceflow.webhooks import service
from invoiceflow.webhooks.schemas import (
    DeliveryFilters,
    DeliveryPage,
    DeliveryRead,
    WebhookCreate,
    WebhookFilters,
    WebhookPage,
    WebhookRead,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
IdemKey = Annotated[str | None, idempotency.HEADER]


@router.post("", status_code=201, response_model=Envelope[WebhookRead])
async def create_webhook(
    data: WebhookCreate,
    actor: AdminDep,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    key: IdemKey = None,
) -> Response:
    """Admins only. The answer is the only one that shows the whole signing secret: store it."""
    record = await idempotency.begin(
        session, actor.organization_id, key, request.url.path, data.model_dump(mode="json")
    )
    endpoint = await service.create_webhook(
        session, actor, data, allow_private=runtime.settings.webhook_allow_private_networks
    )
    out = service.to_read(endpoint, reveal=True).model_dump(mode="json")
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


@router.get("", response_model=Envelope[WebhookPage])
async def list_webhooks(actor: ActorDep, session: SessionDep, filters: Annotated[WebhookFilters, Query()]) -> Response:
    rows, cursor = await service.list_webhooks(session, actor, filters)
    return envelope(WebhookPage(items=[service.to_read(r) for r in rows], next_cursor=cursor, limit=filters.limit))


@router.get("/{webhook_id}", response_model=Envelope[WebhookRead])
async def get_webhook(webhook_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(service.to_read(await service.get_webhook(session, actor, webhook_id)))


@router.patch("/{webhook_id}", response_model=Envelope[WebhookRead])
async def update_webhook(
    webhook_id: uuid.UUID, data: WebhookUpdate, actor: AdminDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    endpoint = await service.update_webhook(
        session, actor, webhook_id, data, allow_private=runtime.settings.webhook_allow_private_networks
    )
    return envelope(service.to_read(endpoint))


@router.delete("/{webhook_id}", response_model=Envelope[WebhookRead])
async def delete_webhook(webhook_id: uuid.UUID, actor: AdminDep, session: SessionDep) -> Response:
    return envelope(service.to_read(await service.delete_webhook(session, actor, webhook_id)))


@router.post("/{webhook_id}/rotate-secret", response_model=Envelope[WebhookRead])
async def rotate_secret(webhook_id: uuid.UUID, actor: AdminDep, session: SessionDep) -> Response:
    """A new signing secret, shown in full in this answer only. The old one stops working at once."""
    return envelope(service.to_read(await service.rotate_secret(session, actor, webhook_id), reveal=True))


@router.get("/{webhook_id}/deliveries", response_model=Envelope[DeliveryPage])
async def list_deliveries(
    webhook_id: uuid.UUID, actor: ActorDep, session: SessionDep, filters: Annotated[DeliveryFilters, Query()]
) -> Response:
    """The endpoint's delivery log, newest first: status, attempts, the latest answer and the next try."""
    rows, cursor = await service.list_deliveries(session, actor, webhook_id, filters)
    return envelope(
        DeliveryPage(items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=cursor, limit=filters.limit)
    )


@router.get("/{webhook_id}/deliveries/{delivery_id}", response_model=Envelope[DeliveryRead])
async def get_delivery(webhook_id: uuid.UUID, delivery_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(DeliveryRead.model_validate(await service.get_delivery(session, actor, webhook_id, delivery_id)))


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202, response_model=Envelope[DeliveryRead])
async def redeliver(webhook_id: uuid.UUID, delivery_id: uuid.UUID, actor: AdminDep, session: SessionDep) -> Response:
    """Send the event again: the delivery is due now, with a fresh retry schedule (same event id)."""
    delivery = await service.redeliver(session, actor, webhook_id, delivery_id)
    return envelope(DeliveryRead.model_validate(delivery), status_code=202)


@router.post("/{webhook_id}/test", status_code=202, response_model=Envelope[DeliveryRead])
async def send_test(webhook_id: uuid.UUID, actor: AdminDep, session: SessionDep) -> Response:
    """Queue a `WebhookTest` event for this endpoint only; follow it in the delivery log."""
    delivery = await service.send_test(session, actor, webhook_id)
    return envelope(DeliveryRead.model_validate(delivery), status_code=202)
