from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep
from invoiceflow.core import idempotency
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.runtime import SessionDep
from invoiceflow.orders import service
from invoiceflow.orders.schemas import OrderCreate, OrderFilters, OrderPage, OrderRead, OrderStatusUpdate

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
IdemKey = Annotated[str | None, idempotency.HEADER]


@router.post("", status_code=201, response_model=Envelope[OrderRead])
async def create_order(
    data: OrderCreate, actor: ActorDep, session: SessionDep, request: Request, key: IdemKey = None
) -> Response:
    record = await idempotency.begin(
        session, actor.organization_id, key, request.url.path, data.model_dump(mode="json")
    )
    order = await service.create_order(session, actor, data)
    out = service.to_read(order).model_dump(mode="json")
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


@router.get("", response_model=Envelope[OrderPage])
async def list_orders(actor: ActorDep, session: SessionDep, filters: Annotated[OrderFilters, Query()]) -> Response:
    rows, cursor = await service.list_orders(session, actor, filters)
    return envelope(OrderPage(items=[service.to_read(o) for o in rows], next_cursor=cursor, limit=filters.limit))


@router.get("/{order_id}", response_model=Envelope[OrderRead])
async def get_order(order_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(service.to_read(await service.get_order(session, actor, order_id)))


@router.patch("/{order_id}/status", response_model=Envelope[OrderRead])
async def change_status(order_id: uuid.UUID, data: OrderStatusUpdate, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(service.to_read(await service.change_status(session, actor, order_id, data.status)))


@router.delete("/{order_id}", response_model=Envelope[OrderRead])
async def delete_order(order_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(service.to_read(await service.delete_order(session, actor, order_id)))
