"""Invoice use cases: create, read, list, update drafts, status changes, delete, invoice an order."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

import orjson
from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from invoiceflow.clients.models import Client
from invoiceflow.core.context import Actor
from invoiceflow.core.db import driver_connection, utcnow
from invoiceflow.core.errors import Conflict, NotFound, ValidationFailed
from invoiceflow.core.listing import next_cursor, paginate
from invoiceflow.core.models import AuditLog, Organization
from invoiceflow.core.money import format_amount, minor_unit, money_quantum, round_money, trim
from invoiceflow.core.numbering import period_for, split_pattern
from invoiceflow.core.records import audit_values, record_audit, record_event
from invoiceflow.core.sequences import next_free_number
from invoiceflow.core.tax import (
    MAX_AMOUNT,
    AllowanceChargeInput,
    LineInput,
    Totals,
    amount_due,
    compute_totals,
    within_limits,
)
from invoiceflow.invoices import transitions
from invoiceflow.invoices.models import Invoice, InvoiceAllowanceCharge, InvoiceLine
from invoiceflow.invoices.schemas import (
    AllowanceChargeIn,
    InvoiceCreate,
    InvoiceFilters,
    InvoiceLineIn,
    InvoiceUpdate,
)
from invoiceflow.orders.models import Order
from invoiceflow.orders.service import get_order, transition_conflict

SERIES = "invoice"


def _totals_of(
    lines: Sequence[InvoiceLine] | Sequence[InvoiceLineIn],
    allowances_charges: Sequence[InvoiceAllowanceCharge],
    currency: str,
) -> Totals:
    return compute_totals(
        [LineInput(ln.quantity, ln.unit_price, ln.vat_category, ln.vat_rate) for ln in lines],
        currency,
        [AllowanceChargeInput(ac.is_charge, ac.amount, ac.vat_category, ac.vat_rate) for ac in allowances_charges],
    )


def _iso(moment: datetime | None) -> str | None:
    # Always with microseconds, as the PostgreSQL list writes them (invoices/pg_list.py).
    return None if moment is None else moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def summary_json(inv: Any) -> dict[str, Any]:
    """The `InvoiceSummary` shape as JSON-ready values, from an Invoice or a row of its columns.

    Built directly (not through the pydantic model) because lists render 50 of these per request;
    tests check the result against `InvoiceSummary`/`InvoiceRead`.
    """
    cur = inv.currency
    step = money_quantum(cur)
    total, paid, rounding = inv.total_amount, inv.amount_paid, inv.rounding_amount
    return {
        "id": str(inv.id),
        "kind": inv.kind,
        "invoice_number": inv.invoice_number,
        "credited_invoice_id": None if inv.credited_invoice_id is None else str(inv.credited_invoice_id),
        "client_id": str(inv.client_id),
        "order_id": None if inv.order_id is None else str(inv.order_id),
        "status": inv.status,
        "issue_date": inv.issue_date.isoformat(),
        "due_date": inv.due_date.isoformat(),
        "currency": cur,
        "net_amount": str(inv.net_amount.quantize(step, ROUND_HALF_UP)),
        "vat_amount": str(inv.vat_amount.quantize(step, ROUND_HALF_UP)),
        "total_amount": str(total.quantize(step, ROUND_HALF_UP)),
        "amount_paid": str(paid.quantize(step, ROUND_HALF_UP)),
        "rounding_amount": str(rounding.quantize(step, ROUND_HALF_UP)),
        # EN 16931 BR-CO-16 (core.tax.amount_due, inlined: lists render 50 of these per request).
        "amount_due": str((total - paid + rounding).quantize(step, ROUND_HALF_UP)),
        "buyer_reference": inv.buyer_reference,
        "external_id": inv.external_id,
        "allowed_transitions": list(transitions.allowed(inv.status, inv.kind)),
        "created_at": _iso(inv.created_at),
        "updated_at": _iso(inv.updated_at),
    }


def read_json(inv: Invoice) -> dict[str, Any]:
    """The full `InvoiceRead` shape: summary, lines, allowances and charges, and the totals and VAT breakdown
    recomputed from them."""
    cur = inv.currency
    totals = _totals_of(inv.lines, inv.allowances_charges, cur)
    places = minor_unit(cur)
    return {
        **summary_json(inv),
        "notes": inv.notes,
        "items": [
            {
                "description": line.description,
                "quantity": str(trim(line.quantity)),
                "unit_code": line.unit_code,
                "unit_price": str(trim(line.unit_price, places)),
                "vat_category": line.vat_category,
                "vat_rate": str(trim(line.vat_rate)),
                "vat_exemption_reason": line.vat_exemption_reason,
                "line_total": str(round_money(line.line_total, cur)),
            }
            for line in inv.lines
        ],
        "allowances_charges": [
            {
                "charge": item.is_charge,
                "amount": str(round_money(item.amount, cur)),
                "reason": item.reason,
                "reason_code": item.reason_code,
                "vat_category": item.vat_category,
                "vat_rate": str(trim(item.vat_rate)),
                "vat_exemption_reason": item.vat_exemption_reason,
            }
            for item in inv.allowances_charges
        ],
        "line_total_amount": str(totals.line_total_amount),
        "allowance_total_amount": str(totals.allowance_total_amount),
        "charge_total_amount": str(totals.charge_total_amount),
        "vat_breakdown": [
            {
                "vat_category": g.vat_category,
                "vat_rate": str(trim(g.vat_rate)),
                "taxable_amount": str(g.taxable_amount),
                "vat_amount": str(g.vat_amount),
            }
            for g in totals.vat_breakdown
        ],
        # Rendered on first download (documents/router.py), so the link is always valid.
        "pdf_url": f"/api/v1/invoices/{inv.id}/pdf",
        "sent_at": _iso(inv.sent_at),
        "paid_at": _iso(inv.paid_at),
    }


def _money_payload(inv: Invoice) -> dict[str, Any]:
    return {
        "invoice_id": str(inv.id),
        "invoice_number": inv.invoice_number,
        "client_id": str(inv.client_id),
        "status": inv.status,
        "currency": inv.currency,
        "total_amount": format_amount(inv.total_amount, inv.currency),
        "due_date": inv.due_date.isoformat(),
    }


@dataclass(frozen=True, slots=True)
class _NewInvoiceContext:
    """What creating an invoice needs from its client and its seller, read in one query."""

    client_id: uuid.UUID
    client_currency: str | None
    seller_id: uuid.UUID
    number_pattern: str
    payment_terms_days: int
    default_currency: str


_CONTEXT_QUERY = (
    select(
        Client.id,
        Client.currency,
        Organization.id,
        Organization.invoice_number_pattern,
        Organization.payment_terms_days,
        Organization.default_currency,
    )
    .join(Organization, Organization.id == Client.organization_id)
    .where(
        Client.id == bindparam("client_id"),
        Client.organization_id == bindparam("organization_id"),
        Client.deleted_at.is_(None),
    )
)


_PG_CONTEXT_QUERY = (
    "SELECT c.id, c.currency, o.id, o.invoice_number_pattern, o.payment_terms_days, o.default_currency "
    "FROM clients c JOIN organizations o ON o.id = c.organization_id "
    "WHERE c.id = $1 AND c.organization_id = $2 AND c.deleted_at IS NULL"
)


async def _new_invoice_context(session: AsyncSession, actor: Actor, client_id: uuid.UUID) -> _NewInvoiceContext:
    if session.bind.dialect.name == "postgresql":
        conn = await driver_connection(session, begin=False)
        row: Any = await conn.fetchrow(_PG_CONTEXT_QUERY, client_id, actor.organization_id)
    else:
        params = {"client_id": client_id, "organization_id": actor.organization_id}
        row = (await session.execute(_CONTEXT_QUERY, params)).one_or_none()
    if row is None:
        raise ValidationFailed.field("client_id", "client not found", type_="not_found")
    return _NewInvoiceContext(*row)


async def _live_client(session: AsyncSession, actor: Actor, client_id: uuid.UUID) -> Client:
    client = await session.get(Client, client_id)
    if client is None or client.organization_id != actor.organization_id or client.deleted_at is not None:
        raise ValidationFailed.field("client_id", "client not found", type_="not_found")
    return client


def _check_dates(issue: date, due: date, *, today: date | None) -> None:
    if due < issue:
        raise ValidationFailed.field("due_date", "must not be before issue_date")
    if today is not None and due < today:
        raise ValidationFailed.field("due_date", "must not be in the past")


def _group_key(category: str, rate: Decimal) -> tuple[str, Decimal]:
    return category, rate.normalize()


def check_totals(
    totals: Totals,
    lines: Sequence[InvoiceLine] | Sequence[InvoiceLineIn],
    allowances_charges: Sequence[InvoiceAllowanceCharge],
    rounding_amount: Decimal,
    currency: str,
    *,
    fields: Sequence[str] | None = None,
    lines_field: str = "items",
) -> None:
    """Refuse (422 naming the field) amounts an invoice or credit note may not have.

    `fields` names each allowance or charge in the request (default `allowances_charges.N`), `lines_field` the
    request's lines. Rules: amounts have at most the currency's decimals; an allowance reduces a VAT group that
    a line or charge has (EN 16931 wants every VAT category used to appear in the breakdown with what it taxes,
    and an allowance alone would make its group negative); no VAT group's taxable amount and so not the total
    without VAT (BT-109) may be negative, and the total must be above zero: corrections are credit notes; the
    rounding amount may not make the amount due negative.
    """
    names = list(fields) if fields is not None else [f"allowances_charges.{i}" for i in range(len(allowances_charges))]
    places = minor_unit(currency)
    for name, item in zip(names, allowances_charges, strict=True):
        if item.amount != round_money(item.amount, currency):
            raise ValidationFailed.field(f"{name}.amount", f"at most {places} decimal places in {currency}")
    if rounding_amount != round_money(rounding_amount, currency):
        raise ValidationFailed.field("rounding_amount", f"at most {places} decimal places in {currency}")
    based = {_group_key(ln.vat_category, ln.vat_rate) for ln in lines}
    based |= {_group_key(ac.vat_category, ac.vat_rate) for ac in allowances_charges if ac.is_charge}
    for name, item in zip(names, allowances_charges, strict=True):
        if not item.is_charge and _group_key(item.vat_category, item.vat_rate) not in based:
            raise ValidationFailed.field(
                f"{name}.vat_rate",
                f"no line or charge is in VAT category {item.vat_category} at {trim(item.vat_rate)} %: "
                "an allowance reduces a VAT category and rate the invoice has",
            )
    for group in totals.vat_breakdown:
        if group.taxable_amount < 0:
            name = next(
                n
                for n, ac in zip(names, allowances_charges, strict=True)
                if not ac.is_charge and _group_key(ac.vat_category, ac.vat_rate) == (group.vat_category, group.vat_rate)
            )
            raise ValidationFailed.field(
                f"{name}.amount",
                f"the allowances in VAT category {group.vat_category} at {trim(group.vat_rate)} % exceed its lines "
                f"and charges (taxable amount {group.taxable_amount}); corrections are credit notes",
            )
    if totals.total_amount <= 0:
        field = "allowances_charges" if allowances_charges and totals.line_total_amount > 0 else lines_field
        raise ValidationFailed.field(field, "the total must be greater than zero")
    if not within_limits(totals):
        raise ValidationFailed.field(lines_field, f"amounts may not exceed {MAX_AMOUNT}")
    if amount_due(totals.total_amount, Decimal(0), rounding_amount, currency) < 0:
        raise ValidationFailed.field("rounding_amount", "may not make the amount due negative")


def _build_allowances_charges(items: Sequence[AllowanceChargeIn]) -> list[InvoiceAllowanceCharge]:
    return [
        InvoiceAllowanceCharge(
            id=uuid.uuid4(),
            position=pos,
            is_charge=item.charge,
            amount=item.amount,
            reason=item.reason,
            reason_code=item.reason_code,
            vat_category=item.vat_category,
            vat_rate=item.vat_rate,
            vat_exemption_reason=item.vat_exemption_reason,
        )
        for pos, item in enumerate(items, start=1)
    ]


def _build_lines(items: list[InvoiceLineIn], totals: Totals) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            id=uuid.uuid4(),
            position=pos,
            description=item.description,
            quantity=item.quantity,
            unit_code=item.unit_code,
            unit_price=item.unit_price,
            vat_category=item.vat_category,
            vat_rate=item.vat_rate,
            vat_exemption_reason=item.vat_exemption_reason,
            line_total=net,
        )
        for pos, (item, net) in enumerate(zip(items, totals.line_totals, strict=True), start=1)
    ]


def duplicate_error(existing_id: uuid.UUID, external_id: str) -> Conflict:
    return Conflict(
        f"An invoice with external_id {external_id!r} already exists",
        code="DUPLICATE_INVOICE",
        details={"field": "external_id", "existing_invoice_id": str(existing_id)},
    )


async def _find_external(session: AsyncSession, org_id: uuid.UUID, external_id: str) -> uuid.UUID | None:
    row = await session.execute(
        select(Invoice.id).where(Invoice.organization_id == org_id, Invoice.external_id == external_id)
    )
    return row.scalar_one_or_none()


async def _number_taken(session: AsyncSession, seller_id: uuid.UUID, number: str) -> bool:
    stmt = select(Invoice.id).where(Invoice.organization_id == seller_id, Invoice.invoice_number == number)
    return (await session.execute(stmt.limit(1))).first() is not None


# PostgreSQL: number and created event in ONE statement, the last before COMMIT, so the counter row's lock
# is held for one round trip (ADR 0002). The numbering function (migration 0003) is the one the standalone
# create uses: it skips numbers already held (possible after a pattern change).
_PG_NUMBER_AND_EVENT = text(
    """
    WITH num AS (
        SELECT invoiceflow_next_invoice_number(:org, :series, :period, :before, :width, :after) AS n
    ), upd AS (
        UPDATE invoices SET invoice_number = num.n FROM num WHERE invoices.id = :invoice_id
    )
    INSERT INTO events (id, organization_id, type, resource_type, resource_id, payload, occurred_at)
    SELECT :event_id, :org, :event_type, 'invoice', :resource_id,
           CAST(CAST(:payload AS jsonb) || jsonb_build_object('invoice_number', num.n) AS json),
           :occurred_at
    FROM num
    RETURNING payload ->> 'invoice_number'
    """
)


async def _number_and_announce(
    session: AsyncSession,
    seller_id: uuid.UUID,
    pattern: str,
    inv: Invoice,
    *,
    series: str = SERIES,
    event_type: str = "InvoiceCreated",
    payload: dict[str, Any] | None = None,
) -> None:
    """Give the new invoice its number and record its created event, as the transaction's last writes.

    Credit notes come through here too, with their own series and event (invoices/credit_notes.py).
    `payload` (default: the money payload) gets the number added.
    """
    payload = _money_payload(inv) if payload is None else payload
    if session.bind.dialect.name != "postgresql":
        # SQLite: writers are serialised by the process's write lock, so plain statements will do.
        async def taken(candidate: str) -> bool:
            return await _number_taken(session, seller_id, candidate)

        number = await next_free_number(session, seller_id, series, pattern, inv.issue_date, taken)
        await session.execute(update(Invoice).where(Invoice.id == inv.id).values(invoice_number=number))
        inv.invoice_number = number
        record_event(
            session,
            organization_id=seller_id,
            type=event_type,
            resource_type="invoice",
            resource_id=inv.id,
            payload={**payload, "invoice_number": number},
        )
        await session.flush()
        return
    before, width, after = split_pattern(pattern, inv.issue_date)
    params = {
        "org": seller_id,
        "series": series,
        "period": period_for(pattern, inv.issue_date),
        "before": before,
        "width": width,
        "after": after,
        "invoice_id": inv.id,
        "event_id": uuid.uuid4(),
        "resource_id": str(inv.id),
        "event_type": event_type,
        "payload": orjson.dumps(payload).decode(),
        "occurred_at": utcnow(),
    }
    inv.invoice_number = (await session.execute(_PG_NUMBER_AND_EVENT, params)).scalar_one()


async def create_invoice(
    session: AsyncSession,
    actor: Actor,
    data: InvoiceCreate,
    *,
    order: Order | None = None,
    today: date | None = None,
    standalone: bool = False,
) -> Invoice:
    """Insert a draft invoice with its lines; returns it (not attached to the session).

    `today` is the business date the rules check against (injectable for back-dated imports).
    This is the hottest write path, so rows go in with Core inserts, and the number is taken by
    the last statement before COMMIT (ADR 0002). `standalone` says the invoice is the request's only
    write: on PostgreSQL it is then created by one self-committing statement (ADR 0004).
    """
    ctx = await _new_invoice_context(session, actor, data.client_id)
    today = today or utcnow().date()
    issue = data.issue_date or today
    due = data.due_date or max(issue + timedelta(days=ctx.payment_terms_days), today)
    _check_dates(issue, due, today=today)
    currency = data.currency or ctx.client_currency or ctx.default_currency
    allowances_charges = _build_allowances_charges(data.allowances_charges)
    totals = _totals_of(data.items, allowances_charges, currency)
    check_totals(totals, data.items, allowances_charges, data.rounding_amount, currency)
    if data.order_id is not None and order is None:
        order = await get_order(session, actor, data.order_id, for_update=True)
        if order.invoice_id is not None:
            raise _already_invoiced(order)
    if data.external_id is not None:
        existing = await _find_external(session, actor.organization_id, data.external_id)
        if existing is not None:
            raise duplicate_error(existing, data.external_id)
    now = utcnow()
    invoice = Invoice(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        kind="invoice",
        credited_invoice_id=None,
        client_id=ctx.client_id,
        order_id=order.id if order else None,
        invoice_number=None,
        status="draft",
        issue_date=issue,
        due_date=due,
        currency=currency,
        notes=data.notes,
        buyer_reference=data.buyer_reference,
        external_id=data.external_id,
        net_amount=totals.net_amount,
        vat_amount=totals.vat_amount,
        total_amount=totals.total_amount,
        amount_paid=Decimal("0"),
        rounding_amount=data.rounding_amount,
        sent_at=None,
        paid_at=None,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        lines=_build_lines(data.items, totals),
        allowances_charges=allowances_charges,
    )
    if standalone and order is None and data.external_id is None and session.bind.dialect.name == "postgresql":
        await _create_standalone(session, actor, invoice, ctx)
        return invoice
    if order is not None:
        order.invoice_id = invoice.id
        order.updated_at = now
        await session.flush()
    try:
        if data.external_id is not None:
            # A concurrent twin may win the unique index: keep the transaction usable to report it.
            async with session.begin_nested():
                await _insert_rows(session, actor, invoice)
        else:
            await _insert_rows(session, actor, invoice)
    except IntegrityError:
        if data.external_id is not None:
            existing = await _find_external(session, actor.organization_id, data.external_id)
            if existing is not None:
                raise duplicate_error(existing, data.external_id) from None
        raise
    await _number_and_announce(session, ctx.seller_id, ctx.number_pattern, invoice)
    return invoice


_INVOICES = cast(Table, Invoice.__table__)
_LINES = cast(Table, InvoiceLine.__table__)
_AUDIT = cast(Table, AuditLog.__table__)
_INVOICE_COLUMNS = tuple(c.key for c in _INVOICES.columns)
_LINE_COLUMNS = tuple(c.key for c in _LINES.columns)
_ALLOWANCES_CHARGES = cast(Table, InvoiceAllowanceCharge.__table__)
_ALLOWANCE_CHARGE_COLUMNS = tuple(c.key for c in _ALLOWANCES_CHARGES.columns)
_INSERT_INVOICE = insert(_INVOICES)
_INSERT_LINE = insert(_LINES)
_INSERT_ALLOWANCE_CHARGE = insert(_ALLOWANCES_CHARGES)
_INSERT_AUDIT = insert(_AUDIT)


# PostgreSQL, ADR 0004: the number, the invoice, its lines, its allowances and charges, its audit row and its
# InvoiceCreated event in one statement. Sent outside a transaction it commits by itself, so the counter row is
# locked from the numbering function to that commit only, never across a round trip to the application.
_PG_CREATE_STANDALONE = """
WITH num AS (
    SELECT invoiceflow_next_invoice_number($31, $32, $33, $34, $35, $36) AS n
), inv AS (
    INSERT INTO invoices (id, organization_id, client_id, order_id, invoice_number, status, issue_date,
        due_date, currency, notes, buyer_reference, external_id, net_amount, vat_amount, total_amount,
        amount_paid, rounding_amount, sent_at, paid_at, created_at, updated_at, deleted_at)
    SELECT $1, $2, $3, NULL, num.n, 'draft', $4, $5, $6, $7, $8, NULL, $9, $10, $11, 0, $37, NULL, NULL,
        $12, $12, NULL
    FROM num
), allowances_charges AS (
    INSERT INTO invoice_allowance_charges (id, invoice_id, position, is_charge, amount, reason, reason_code,
        vat_category, vat_rate, vat_exemption_reason)
    SELECT a.id, $1, a.position, a.is_charge, a.amount, a.reason, a.reason_code, a.vat_category, a.vat_rate,
        a.exemption
    FROM unnest($38::uuid[], $39::int[], $40::bool[], $41::numeric[], $42::text[], $43::text[], $44::text[],
        $45::numeric[], $46::text[])
        AS a(id, position, is_charge, amount, reason, reason_code, vat_category, vat_rate, exemption)
), lines AS (
    INSERT INTO invoice_lines (id, invoice_id, position, description, quantity, unit_code, unit_price,
        vat_category, vat_rate, vat_exemption_reason, line_total)
    SELECT l.id, $1, l.position, l.description, l.quantity, l.unit_code, l.unit_price, l.vat_category,
        l.vat_rate, l.reason, l.total
    FROM unnest($13::uuid[], $14::int[], $15::text[], $16::numeric[], $17::text[], $18::numeric[],
        $19::text[], $20::numeric[], $21::text[], $22::numeric[])
        AS l(id, position, description, quantity, unit_code, unit_price, vat_category, vat_rate, reason, total)
), audit AS (
    INSERT INTO audit_logs (id, organization_id, actor_user_id, actor_api_key_id, action, resource_type,
        resource_id, ip_address, user_agent, details, created_at)
    VALUES ($23, $2, $24, $25, 'invoice.create', 'invoice', $26, $27, $28, '{}', $12)
), event AS (
    INSERT INTO events (id, organization_id, type, resource_type, resource_id, payload, occurred_at)
    SELECT $29, $2, 'InvoiceCreated', 'invoice', $26,
        CAST(CAST($30 AS jsonb) || jsonb_build_object('invoice_number', num.n) AS json), $12
    FROM num
)
SELECT n FROM num
"""


async def _create_standalone(session: AsyncSession, actor: Actor, invoice: Invoice, ctx: _NewInvoiceContext) -> None:
    lines = invoice.lines
    adjustments = invoice.allowances_charges
    audit = audit_values(actor, action="invoice.create", resource_type="invoice", resource_id=invoice.id)
    pattern = ctx.number_pattern
    prefix, width, suffix = split_pattern(pattern, invoice.issue_date)
    # No transaction is open on this path (the reads before it ran without one): the statement is its own
    # transaction, with no BEGIN or COMMIT round trips.
    conn = await driver_connection(session, begin=False)
    invoice.invoice_number = await conn.fetchval(
        _PG_CREATE_STANDALONE,
        invoice.id,
        invoice.organization_id,
        invoice.client_id,
        invoice.issue_date,
        invoice.due_date,
        invoice.currency,
        invoice.notes,
        invoice.buyer_reference,
        invoice.net_amount,
        invoice.vat_amount,
        invoice.total_amount,
        invoice.created_at,
        [ln.id for ln in lines],
        [ln.position for ln in lines],
        [ln.description for ln in lines],
        [ln.quantity for ln in lines],
        [ln.unit_code for ln in lines],
        [ln.unit_price for ln in lines],
        [ln.vat_category for ln in lines],
        [ln.vat_rate for ln in lines],
        [ln.vat_exemption_reason for ln in lines],
        [ln.line_total for ln in lines],
        audit["id"],
        audit["actor_user_id"],
        audit["actor_api_key_id"],
        str(invoice.id),
        audit["ip_address"],
        audit["user_agent"],
        uuid.uuid4(),
        orjson.dumps(_money_payload(invoice)).decode(),
        ctx.seller_id,
        SERIES,
        period_for(pattern, invoice.issue_date),
        prefix,
        width,
        suffix,
        invoice.rounding_amount,
        [ac.id for ac in adjustments],
        [ac.position for ac in adjustments],
        [ac.is_charge for ac in adjustments],
        [ac.amount for ac in adjustments],
        [ac.reason for ac in adjustments],
        [ac.reason_code for ac in adjustments],
        [ac.vat_category for ac in adjustments],
        [ac.vat_rate for ac in adjustments],
        [ac.vat_exemption_reason for ac in adjustments],
    )


async def _insert_rows(
    session: AsyncSession, actor: Actor, invoice: Invoice, *, action: str = "invoice.create"
) -> None:
    await session.execute(_INSERT_INVOICE, {k: getattr(invoice, k) for k in _INVOICE_COLUMNS})
    await session.execute(
        _INSERT_LINE,
        [{k: getattr(line, k) for k in _LINE_COLUMNS} | {"invoice_id": invoice.id} for line in invoice.lines],
    )
    if invoice.allowances_charges:
        await session.execute(
            _INSERT_ALLOWANCE_CHARGE,
            [
                {k: getattr(item, k) for k in _ALLOWANCE_CHARGE_COLUMNS} | {"invoice_id": invoice.id}
                for item in invoice.allowances_charges
            ],
        )
    await session.execute(
        _INSERT_AUDIT, audit_values(actor, action=action, resource_type="invoice", resource_id=invoice.id)
    )


def _already_invoiced(order: Order) -> Conflict:
    return Conflict(
        f"Order {order.order_number} was already invoiced",
        code="ORDER_ALREADY_INVOICED",
        details={"invoice_id": str(order.invoice_id)},
    )


async def invoice_order(session: AsyncSession, actor: Actor, order_id: uuid.UUID) -> Invoice:
    order = await get_order(session, actor, order_id, for_update=True)
    if order.invoice_id is not None:
        raise _already_invoiced(order)
    if order.status == "cancelled":
        raise Conflict("A cancelled order cannot be invoiced", code="ORDER_CANCELLED")
    data = InvoiceCreate(
        client_id=order.client_id,
        currency=order.currency,
        notes=order.notes,
        buyer_reference=order.order_number,
        items=[
            InvoiceLineIn(
                description=item.product_name,
                quantity=item.quantity,
                unit_price=item.unit_price,
                vat_category="S" if item.vat_rate > 0 else "Z",
                vat_rate=item.vat_rate,
            )
            for item in order.items
        ],
    )
    invoice = await create_invoice(session, actor, data, order=order)
    record_event(
        session,
        organization_id=actor.organization_id,
        type="OrderInvoiced",
        resource_type="order",
        resource_id=order.id,
        payload={"order_id": str(order.id), "invoice_id": str(invoice.id), "invoice_number": invoice.invoice_number},
    )
    return invoice


async def get_invoice(
    session: AsyncSession, actor: Actor, invoice_id: uuid.UUID, *, for_update: bool = False
) -> Invoice:
    stmt = (
        select(Invoice)
        .options(selectinload(Invoice.lines), selectinload(Invoice.allowances_charges))
        .where(Invoice.id == invoice_id, Invoice.organization_id == actor.organization_id, Invoice.deleted_at.is_(None))
    )
    if for_update:
        stmt = stmt.with_for_update(of=Invoice)
    invoice = (await session.execute(stmt)).scalar_one_or_none()
    if invoice is None:
        raise NotFound("Invoice not found", code="INVOICE_NOT_FOUND")
    return invoice


_SORTS: dict[str, tuple[Any, type]] = {
    "created_at": (Invoice.created_at, datetime),
    "issue_date": (Invoice.issue_date, date),
    "due_date": (Invoice.due_date, date),
    "total_amount": (Invoice.total_amount, Decimal),
    "invoice_number": (Invoice.invoice_number, str),
}


# The columns a list row shows: selected as plain rows, no ORM identity map on the list path.
_SUMMARY_COLUMNS = (
    Invoice.id,
    Invoice.kind,
    Invoice.invoice_number,
    Invoice.credited_invoice_id,
    Invoice.client_id,
    Invoice.order_id,
    Invoice.status,
    Invoice.issue_date,
    Invoice.due_date,
    Invoice.currency,
    Invoice.net_amount,
    Invoice.vat_amount,
    Invoice.total_amount,
    Invoice.amount_paid,
    Invoice.rounding_amount,
    Invoice.buyer_reference,
    Invoice.external_id,
    Invoice.created_at,
    Invoice.updated_at,
)


async def list_invoices(session: AsyncSession, actor: Actor, f: InvoiceFilters) -> tuple[list[Any], str | None]:
    """Rows with the summary columns (render with `summary_json`) and the next cursor."""
    stmt = select(*_SUMMARY_COLUMNS).where(
        Invoice.organization_id == actor.organization_id, Invoice.deleted_at.is_(None)
    )
    if f.status:
        stmt = stmt.where(Invoice.status == f.status)
    if f.kind:
        stmt = stmt.where(Invoice.kind == f.kind)
    if f.client_id:
        stmt = stmt.where(Invoice.client_id == f.client_id)
    if f.issue_date_from:
        stmt = stmt.where(Invoice.issue_date >= f.issue_date_from)
    if f.issue_date_to:
        stmt = stmt.where(Invoice.issue_date <= f.issue_date_to)
    if f.due_date_from:
        stmt = stmt.where(Invoice.due_date >= f.due_date_from)
    if f.due_date_to:
        stmt = stmt.where(Invoice.due_date <= f.due_date_to)
    if f.overdue is not None:
        today = utcnow().date()
        # Only invoices fall overdue: a credit note is money the seller owes.
        late = and_(Invoice.kind == "invoice", Invoice.status == "sent", Invoice.due_date < today)
        is_overdue = or_(Invoice.status == "overdue", late)
        stmt = stmt.where(is_overdue if f.overdue else ~is_overdue)
    if f.min_amount is not None:
        stmt = stmt.where(Invoice.total_amount >= f.min_amount)
    if f.max_amount is not None:
        stmt = stmt.where(Invoice.total_amount <= f.max_amount)
    if f.currency:
        stmt = stmt.where(Invoice.currency == f.currency)
    if f.q:
        needle = f.q.lower()
        matching_clients = select(Client.id).where(
            Client.organization_id == actor.organization_id, func.lower(Client.name).contains(needle, autoescape=True)
        )
        stmt = stmt.where(
            or_(
                func.lower(Invoice.invoice_number).contains(needle, autoescape=True),
                func.lower(Invoice.buyer_reference).contains(needle, autoescape=True),
                func.lower(Invoice.external_id).contains(needle, autoescape=True),
                Invoice.client_id.in_(matching_clients),
            )
        )
    name = f.sort.lstrip("-")
    col, typ = _SORTS[name]
    stmt = paginate(
        stmt,
        sort_col=col,
        id_col=Invoice.id,
        sort_type=typ,
        descending=f.sort.startswith("-"),
        cursor=f.cursor,
        limit=f.limit,
    )
    rows = list((await session.execute(stmt)).all())
    return next_cursor(rows, limit=f.limit, sort_attr=name)


async def update_invoice(session: AsyncSession, actor: Actor, invoice_id: uuid.UUID, data: InvoiceUpdate) -> Invoice:
    invoice = await get_invoice(session, actor, invoice_id, for_update=True)
    if invoice.kind == "credit_note":
        # Its lines are bounded by what remains uncredited on the original: cancel it and issue another.
        raise Conflict(
            "A credit note cannot be edited; cancel it and issue a new one",
            code="CREDIT_NOTE_NOT_EDITABLE",
            details={"status": invoice.status},
        )
    if invoice.status not in transitions.EDITABLE:
        raise Conflict(
            f"A {invoice.status} invoice cannot be edited; issue a credit note instead",
            code="INVOICE_NOT_EDITABLE",
            details={"status": invoice.status},
        )
    changes = data.model_dump(exclude_unset=True)
    for field in ("client_id", "items", "issue_date", "due_date", "currency", "allowances_charges", "rounding_amount"):
        if field in changes and changes[field] is None:
            raise ValidationFailed.field(field, "may not be null")
    if data.client_id is not None:
        invoice.client_id = (await _live_client(session, actor, data.client_id)).id
    issue = data.issue_date or invoice.issue_date
    due = data.due_date or invoice.due_date
    _check_dates(issue, due, today=utcnow().date() if "due_date" in changes else None)
    invoice.issue_date, invoice.due_date = issue, due
    for field in ("notes", "buyer_reference"):
        if field in changes:
            setattr(invoice, field, changes[field])
    if data.currency is not None:
        invoice.currency = data.currency
    if data.allowances_charges is not None:
        invoice.allowances_charges = _build_allowances_charges(data.allowances_charges)
    if data.rounding_amount is not None:
        invoice.rounding_amount = data.rounding_amount
    if changes.keys() & {"items", "currency", "allowances_charges", "rounding_amount"}:
        items = (
            data.items
            if data.items is not None
            else [InvoiceLineIn.model_validate(_line_in(ln)) for ln in invoice.lines]
        )
        totals = _totals_of(items, invoice.allowances_charges, invoice.currency)
        check_totals(totals, items, invoice.allowances_charges, invoice.rounding_amount, invoice.currency)
        if data.items is not None or data.currency is not None:
            invoice.lines = _build_lines(items, totals)
        invoice.net_amount, invoice.vat_amount, invoice.total_amount = (
            totals.net_amount,
            totals.vat_amount,
            totals.total_amount,
        )
    invoice.updated_at = utcnow()
    record_event(
        session,
        organization_id=actor.organization_id,
        type="InvoiceUpdated",
        resource_type="invoice",
        resource_id=invoice.id,
        payload={**_money_payload(invoice), "changed": sorted(changes)},
    )
    record_audit(
        session,
        actor,
        action="invoice.update",
        resource_type="invoice",
        resource_id=invoice.id,
        details={"changed": sorted(changes)},
    )
    await session.flush()
    return invoice


def _line_in(line: InvoiceLine) -> dict[str, Any]:
    return {
        "description": line.description,
        "quantity": line.quantity,
        "unit_code": line.unit_code,
        "unit_price": line.unit_price,
        "vat_category": line.vat_category,
        "vat_rate": line.vat_rate,
        "vat_exemption_reason": line.vat_exemption_reason,
    }


# Runs on a draft about to be sent, after the transition was found allowed and before anything changes; it
# raises to refuse the send. The e-invoicing layer (above this one) supplies the official-rules check.
SendCheck = Callable[[AsyncSession, Invoice], Awaitable[None]]


async def change_status(
    session: AsyncSession,
    actor: Actor,
    invoice_id: uuid.UUID,
    status: str,
    *,
    before_send: SendCheck | None = None,
) -> Invoice:
    invoice = await get_invoice(session, actor, invoice_id, for_update=True)
    allowed_next = transitions.allowed(invoice.status, invoice.kind)
    if status not in allowed_next:
        raise transition_conflict("invoice", invoice.status, status, allowed_next)
    if status == "sent" and before_send is not None:
        await before_send(session, invoice)
    previous = invoice.status
    now = utcnow()
    invoice.status = status
    invoice.updated_at = now
    if status == "sent":
        invoice.sent_at = now
    elif status == "paid":
        invoice.paid_at = now
        # Settled in full: the amount due (BT-115, with the rounding amount BT-114) was paid.
        invoice.amount_paid = invoice.total_amount + invoice.rounding_amount
    record_event(
        session,
        organization_id=actor.organization_id,
        type="InvoiceStatusChanged",
        resource_type="invoice",
        resource_id=invoice.id,
        payload={**_money_payload(invoice), "from": previous, "to": status},
    )
    record_audit(
        session,
        actor,
        action="invoice.status",
        resource_type="invoice",
        resource_id=invoice.id,
        details={"from": previous, "to": status},
    )
    await session.flush()
    return invoice


async def delete_invoice(session: AsyncSession, actor: Actor, invoice_id: uuid.UUID) -> Invoice:
    invoice = await get_invoice(session, actor, invoice_id, for_update=True)
    if invoice.status not in transitions.DELETABLE:
        raise Conflict(
            f"A {invoice.status} invoice is kept for the records and cannot be deleted",
            code="INVOICE_NOT_DELETABLE",
            details={"status": invoice.status},
        )
    invoice.deleted_at = utcnow()
    if invoice.order_id is not None:
        # The order may be invoiced again once its draft invoice is gone.
        order = await session.get(Order, invoice.order_id)
        if order is not None and order.invoice_id == invoice.id:
            order.invoice_id = None
    record_event(
        session,
        organization_id=actor.organization_id,
        type="InvoiceDeleted",
        resource_type="invoice",
        resource_id=invoice.id,
        payload=_money_payload(invoice),
    )
    record_audit(session, actor, action="invoice.delete", resource_type="invoice", resource_id=invoice.id)
    await session.flush()
    return invoice
