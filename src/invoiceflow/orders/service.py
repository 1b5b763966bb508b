"""Order use cases."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from invoiceflow.clients.service import get_client
from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import Conflict, NotFound, ValidationFailed
from invoiceflow.core.listing import page_by_created_at
from invoiceflow.core.models import Organization
from invoiceflow.core.money import format_amount, minor_unit, round_money, trim
from invoiceflow.core.records import record_audit, record_event
from invoiceflow.core.sequences import next_free_number
from invoiceflow.core.tax import MAX_AMOUNT, LineInput, compute_totals, within_limits
from invoiceflow.orders.models import Order, OrderItem
from invoiceflow.orders.schemas import OrderCreate, OrderFilters, OrderItemRead, OrderRead
from invoiceflow.orders.transitions import allowed


def to_read(order: Order) -> OrderRead:
    return OrderRead(
        id=order.id,
        order_number=order.order_number,
        client_id=order.client_id,
        status=order.status,
        order_date=order.order_date,
        currency=order.currency,
        notes=order.notes,
        items=[
            OrderItemRead(
                product_name=i.product_name,
                quantity=trim(i.quantity),
                unit_price=trim(i.unit_price, minor_unit(order.currency)),
                vat_rate=trim(i.vat_rate),
                line_total=round_money(i.line_total, order.currency),
            )
            for i in order.items
        ],
        net_amount=round_money(order.net_amount, order.currency),
        vat_amount=round_money(order.vat_amount, order.currency),
        total_amount=round_money(order.total_amount, order.currency),
        invoice_id=order.invoice_id,
        allowed_transitions=list(allowed(order.status)),
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


def _duplicate(number: str) -> Conflict:
    return Conflict(
        f"Order number {number} already exists", code="DUPLICATE_ORDER_NUMBER", details={"field": "order_number"}
    )


async def _number_taken(session: AsyncSession, org_id: uuid.UUID, number: str) -> bool:
    stmt = select(Order.id).where(Order.organization_id == org_id, Order.order_number == number)
    return (await session.execute(stmt.limit(1))).first() is not None


async def create_order(session: AsyncSession, actor: Actor, data: OrderCreate) -> Order:
    try:
        client = await get_client(session, actor, data.client_id)
    except NotFound:
        # A body field naming a missing client is invalid input, as for invoices (not a missing route).
        raise ValidationFailed.field("client_id", "client not found", type_="not_found") from None
    org = await session.get(Organization, actor.organization_id)
    assert org is not None
    currency = data.currency or client.currency or org.default_currency
    order_date = data.order_date or utcnow().date()
    lines = [LineInput(i.quantity, i.unit_price, "S" if i.vat_rate > 0 else "Z", i.vat_rate) for i in data.items]
    totals = compute_totals(lines, currency)
    if not within_limits(totals):
        raise ValidationFailed.field("items", f"amounts may not exceed {MAX_AMOUNT}")
    if data.order_number is not None:
        exists = await session.execute(
            select(Order.id).where(
                Order.organization_id == actor.organization_id, Order.order_number == data.order_number
            )
        )
        if exists.first() is not None:
            raise _duplicate(data.order_number)
    order = Order(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        client_id=client.id,
        order_number=data.order_number or f"pending-{uuid.uuid4().hex}",
        order_date=order_date,
        currency=currency,
        notes=data.notes,
        status="pending",
        net_amount=totals.net_amount,
        vat_amount=totals.vat_amount,
        total_amount=totals.total_amount,
        items=[
            OrderItem(
                position=pos,
                product_name=item.product_name,
                quantity=item.quantity,
                unit_price=item.unit_price,
                vat_rate=item.vat_rate,
                line_total=net,
            )
            for pos, (item, net) in enumerate(zip(data.items, totals.line_totals, strict=True), start=1)
        ],
    )
    session.add(order)
    try:
        await session.flush()
    except IntegrityError:
        raise _duplicate(order.order_number) from None
    if data.order_number is None:
        # Generated numbers come last: the counter row stays locked until COMMIT (ADR 0002).
        org_id = actor.organization_id

        async def taken(number: str) -> bool:
            return await _number_taken(session, org_id, number)

        order.order_number = await next_free_number(
            session, org_id, "order", org.order_number_pattern, order_date, taken
        )
    record_event(
        session,
        organization_id=actor.organization_id,
        type="OrderCreated",
        resource_type="order",
        resource_id=order.id,
        payload={
            "order_id": str(order.id),
            "order_number": order.order_number,
            "client_id": str(client.id),
            "total_amount": format_amount(order.total_amount, currency),
            "currency": currency,
        },
    )
    record_audit(session, actor, action="order.create", resource_type="order", resource_id=order.id)
    try:
        await session.flush()
    except IntegrityError:
        raise _duplicate(order.order_number) from None
    return order


async def get_order(session: AsyncSession, actor: Actor, order_id: uuid.UUID, *, for_update: bool = False) -> Order:
    stmt = (
        select(Order)
        .options(selectinload(Order.items))
        .where(Order.id == order_id, Order.organization_id == actor.organization_id, Order.deleted_at.is_(None))
    )
    if for_update:
        stmt = stmt.with_for_update()
    order = (await session.execute(stmt)).scalar_one_or_none()
    if order is None:
        raise NotFound("Order not found", code="ORDER_NOT_FOUND")
    return order


async def list_orders(session: AsyncSession, actor: Actor, filters: OrderFilters) -> tuple[list[Order], str | None]:
    stmt = (
        select(Order)
        .options(selectinload(Order.items))
        .where(Order.organization_id == actor.organization_id, Order.deleted_at.is_(None))
    )
    if filters.status:
        stmt = stmt.where(Order.status == filters.status)
    if filters.client_id:
        stmt = stmt.where(Order.client_id == filters.client_id)
    if filters.date_from:
        stmt = stmt.where(Order.order_date >= filters.date_from)
    if filters.date_to:
        stmt = stmt.where(Order.order_date <= filters.date_to)
    return await page_by_created_at(session, stmt, Order, cursor=filters.cursor, limit=filters.limit)


def transition_conflict(kind: str, current: str, target: str, allowed_next: tuple[str, ...]) -> Conflict:
    return Conflict(
        f"Cannot change {kind} status from {current} to {target}",
        code="INVALID_STATUS_TRANSITION",
        details={"current_status": current, "requested_status": target, "allowed_transitions": list(allowed_next)},
    )


async def change_status(session: AsyncSession, actor: Actor, order_id: uuid.UUID, status: str) -> Order:
    order = await get_order(session, actor, order_id, for_update=True)
    if status not in allowed(order.status):
        raise transition_conflict("order", order.status, status, allowed(order.status))
    previous = order.status
    order.status = status
    order.updated_at = utcnow()
    record_event(
        session,
        organization_id=actor.organization_id,
        type="OrderStatusChanged",
        resource_type="order",
        resource_id=order.id,
        payload={"order_id": str(order.id), "from": previous, "to": status},
    )
    record_audit(
        session,
        actor,
        action="order.status",
        resource_type="order",
        resource_id=order.id,
        details={"from": previous, "to": status},
    )
    await session.flush()
    return order


async def delete_order(session: AsyncSession, actor: Actor, order_id: uuid.UUID) -> Order:
    order = await get_order(session, actor, order_id, for_update=True)
    if order.invoice_id is not None:
        raise Conflict(
            "An invoiced order cannot be deleted", code="ORDER_INVOICED", details={"invoice_id": str(order.invoice_id)}
        )
    order.deleted_at = utcnow()
    record_event(
        session,
        organization_id=actor.organization_id,
        type="OrderDeleted",
        resource_type="order",
        resource_id=order.id,
        payload={"order_id": str(order.id)},
    )
    record_audit(session, actor, action="order.delete", resource_type="order", resource_id=order.id)
    await session.flush()
    return order
