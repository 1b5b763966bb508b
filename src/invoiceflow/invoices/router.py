from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep
from invoiceflow.core import idempotency
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.money import round_money
from invoiceflow.core.runtime import ON_ISSUED, SEND_CHECK, Runtime, RuntimeDep, SessionDep
from invoiceflow.invoices import credit_notes, payments, pg_list, service
from invoiceflow.invoices.models import Payment
from invoiceflow.invoices.schemas import (
    CreditNoteCreate,
    InvoiceCreate,
    InvoiceFilters,
    InvoicePage,
    InvoiceRead,
    InvoiceStatusUpdate,
    InvoiceUpdate,
    PaymentCreate,
    PaymentRead,
    PaymentRecorded,
)

router = APIRouter(prefix="/api/v1", tags=["invoices"])
IdemKey = Annotated[str | None, idempotency.HEADER]


@router.post("/invoices", status_code=201, response_model=Envelope[InvoiceRead])
async def create_invoice(
    data: InvoiceCreate, actor: ActorDep, session: SessionDep, request: Request, key: IdemKey = None
) -> Response:
    record = None
    if key is not None:
        record = await idempotency.begin(
            session, actor.organization_id, key, request.url.path, data.model_dump(mode="json")
        )
    invoice = await service.create_invoice(session, actor, data, standalone=record is None)
    if record is None:
        # Commit before rendering: the organisation's number counter stays locked until COMMIT (ADR 0002).
        # (On PostgreSQL the standalone create has committed already, ADR 0004.)
        await session.commit()
        return envelope(service.read_json(invoice), status_code=201)
    out = service.read_json(invoice)
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


@router.get("/invoices", response_model=Envelope[InvoicePage])
async def list_invoices(actor: ActorDep, session: SessionDep, filters: Annotated[InvoiceFilters, Query()]) -> Response:
    if session.bind.dialect.name == "postgresql":
        return envelope(await pg_list.invoice_page(session, actor, filters))
    rows, cursor = await service.list_invoices(session, actor, filters)
    page = {"items": [service.summary_json(r) for r in rows], "next_cursor": cursor, "limit": filters.limit}
    return envelope(page)


@router.get("/invoices/{invoice_id}", response_model=Envelope[InvoiceRead])
async def get_invoice(invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(service.read_json(await service.get_invoice(session, actor, invoice_id)))


@router.patch("/invoices/{invoice_id}", response_model=Envelope[InvoiceRead])
async def update_invoice(invoice_id: uuid.UUID, data: InvoiceUpdate, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(service.read_json(await service.update_invoice(session, actor, invoice_id, data)))


def _send_check(runtime: Runtime) -> service.SendCheck | None:
    """The check a draft must pass before it is sent (the official e-invoice rules), when one is configured."""
    check = runtime.extras.get(SEND_CHECK)
    return cast("service.SendCheck | None", check)


async def _issued(runtime: Runtime, session: SessionDep, invoice: Any) -> None:
    """Start what follows issuing (the invoice workflow), in this transaction; starting it twice is harmless."""
    hook = runtime.extras.get(ON_ISSUED)
    if hook is not None:
        await hook(session, invoice)


@router.patch("/invoices/{invoice_id}/status", response_model=Envelope[InvoiceRead])
async def change_status(
    invoice_id: uuid.UUID, data: InvoiceStatusUpdate, actor: ActorDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Move an invoice along its lifecycle; `sent` first passes the e-invoice rules (422 with the findings)."""
    invoice = await service.change_status(session, actor, invoice_id, data.status, before_send=_send_check(runtime))
    if data.status == "sent":
        await _issued(runtime, session, invoice)
    return envelope(service.read_json(invoice))


@router.post("/invoices/{invoice_id}/send", response_model=Envelope[InvoiceRead])
async def send_invoice(invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Issue a draft: the same as `PATCH /status {"status": "sent"}`, checked against the e-invoice rules."""
    invoice = await service.change_status(session, actor, invoice_id, "sent", before_send=_send_check(runtime))
    await _issued(runtime, session, invoice)
    return envelope(service.read_json(invoice))


@router.delete("/invoices/{invoice_id}", response_model=Envelope[InvoiceRead])
async def delete_invoice(invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(service.read_json(await service.delete_invoice(session, actor, invoice_id)))


@router.post("/orders/{order_id}/invoice", status_code=201, response_model=Envelope[InvoiceRead], tags=["orders"])
async def invoice_order(
    order_id: uuid.UUID, actor: ActorDep, session: SessionDep, request: Request, key: IdemKey = None
) -> Response:
    record = await idempotency.begin(session, actor.organization_id, key, request.url.path, {})
    invoice = await service.invoice_order(session, actor, order_id)
    out = service.read_json(invoice)
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


@router.post("/invoices/{invoice_id}/credit-notes", status_code=201, response_model=Envelope[InvoiceRead])
async def create_credit_note(
    invoice_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    request: Request,
    data: Annotated[CreditNoteCreate | None, Body()] = None,
    key: IdemKey = None,
) -> Response:
    """Credit an issued invoice in full (no body, or `lines` null) or for chosen lines and, with them, chosen
    document-level allowances and charges; the credit note is a draft."""
    data = data or CreditNoteCreate()
    record = await idempotency.begin(
        session, actor.organization_id, key, request.url.path, data.model_dump(mode="json")
    )
    note = await credit_notes.credit_invoice(
        session, actor, invoice_id, data.lines, allowances_charges=data.allowances_charges
    )
    out = service.read_json(note)
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


def _payment_json(payment: Payment) -> dict[str, Any]:
    out = PaymentRead.model_validate(payment, from_attributes=True).model_dump(mode="json")
    # Stored with 4 decimals; shown, like every amount, with the currency's own.
    out["amount"] = str(round_money(payment.amount, payment.currency))
    return out


@router.post("/invoices/{invoice_id}/payments", status_code=201, response_model=Envelope[PaymentRecorded])
async def record_payment(
    invoice_id: uuid.UUID,
    data: PaymentCreate,
    actor: ActorDep,
    session: SessionDep,
    request: Request,
    key: IdemKey = None,
) -> Response:
    """Record a full or partial payment; the one that completes the amount due makes the invoice `paid`."""
    record = await idempotency.begin(
        session, actor.organization_id, key, request.url.path, data.model_dump(mode="json")
    )
    invoice, payment = await payments.record_payment(session, actor, invoice_id, data)
    out = {"payment": _payment_json(payment), "invoice": service.read_json(invoice)}
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


@router.get("/invoices/{invoice_id}/payments", response_model=Envelope[list[PaymentRead]])
async def list_payments(invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    """The invoice's payments, oldest first."""
    return envelope([_payment_json(p) for p in await payments.list_payments(session, actor, invoice_id)])
