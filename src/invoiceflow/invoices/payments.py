"""Payments: money received for an issued invoice, in full or in parts (for a credit note: paid back).

- Only an issued document takes payments: `sent` or `overdue` (a credit note: `sent`). A draft is not owed
  yet, a paid one is settled, a cancelled one is void: 409 with the status.
- The amount is in the invoice's currency, positive, and at most what is still due (EN 16931 BT-115:
  total with VAT − paid + rounding): an overpayment is refused (422) rather than leaving a negative balance
  nobody asked for.
- The invoice row is locked first, so concurrent payments are checked against each other's effect.
- A payment that completes the amount due moves the invoice to `paid` (InvoiceStatusChanged, as a status
  change would); every payment emits PaymentRecorded. Reminders look at the status, so they stop.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core import tax
from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import Conflict, ValidationFailed
from invoiceflow.core.money import format_amount, minor_unit
from invoiceflow.core.records import record_audit, record_event
from invoiceflow.invoices import transitions
from invoiceflow.invoices.models import Invoice, Payment
from invoiceflow.invoices.schemas import PaymentCreate
from invoiceflow.invoices.service import _money_payload, get_invoice

PAYABLE = {"invoice": frozenset({"sent", "overdue"}), "credit_note": frozenset({"sent"})}


def amount_due(invoice: Invoice) -> Decimal:
    return tax.amount_due(invoice.total_amount, invoice.amount_paid, invoice.rounding_amount, invoice.currency)


async def record_payment(
    session: AsyncSession, actor: Actor, invoice_id: uuid.UUID, data: PaymentCreate, *, today: date | None = None
) -> tuple[Invoice, Payment]:
    invoice = await get_invoice(session, actor, invoice_id, for_update=True)
    if invoice.status not in PAYABLE.get(invoice.kind, frozenset()):
        raise Conflict(
            f"A {invoice.status} {invoice.kind.replace('_', ' ')} takes no payments",
            code="NOT_PAYABLE",
            details={"status": invoice.status, "payable_statuses": sorted(PAYABLE.get(invoice.kind, ()))},
        )
    if data.currency is not None and data.currency != invoice.currency:
        raise ValidationFailed.field("currency", f"the invoice is in {invoice.currency}")
    amount = data.amount
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > minor_unit(invoice.currency):
        raise ValidationFailed.field("amount", f"{invoice.currency} has {minor_unit(invoice.currency)} decimals")
    due = amount_due(invoice)
    if amount > due:
        raise ValidationFailed.field(
            "amount", f"exceeds the amount due ({format_amount(due, invoice.currency)} {invoice.currency})"
        )
    today = today or utcnow().date()
    paid_on = data.paid_on or today
    if paid_on > today:
        raise ValidationFailed.field("paid_on", "must not be in the future")

    now = utcnow()
    payment = Payment(
        id=uuid.uuid4(),
        organization_id=invoice.organization_id,
        invoice_id=invoice.id,
        amount=amount,
        currency=invoice.currency,
        paid_on=paid_on,
        method=data.method,
        reference=data.reference,
        note=data.note,
        created_at=now,
    )
    session.add(payment)
    invoice.amount_paid = invoice.amount_paid + amount
    invoice.updated_at = now
    settled = amount == due
    previous = invoice.status
    if settled and "paid" in transitions.allowed(previous, invoice.kind):
        invoice.status = "paid"
        invoice.paid_at = now
    record_event(
        session,
        organization_id=invoice.organization_id,
        type="PaymentRecorded",
        resource_type="invoice",
        resource_id=invoice.id,
        payload={
            **_money_payload(invoice),
            "payment_id": str(payment.id),
            "amount": format_amount(amount, invoice.currency),
            "amount_due": format_amount(amount_due(invoice), invoice.currency),
            "paid_on": paid_on.isoformat(),
            "method": data.method,
        },
    )
    if settled:
        record_event(
            session,
            organization_id=invoice.organization_id,
            type="InvoiceStatusChanged",
            resource_type="invoice",
            resource_id=invoice.id,
            payload={**_money_payload(invoice), "from": previous, "to": "paid"},
        )
    record_audit(
        session,
        actor,
        action="invoice.payment",
        resource_type="invoice",
        resource_id=invoice.id,
        details={"payment_id": str(payment.id), "amount": str(amount), "settled": settled},
    )
    await session.flush()
    return invoice, payment


async def list_payments(session: AsyncSession, actor: Actor, invoice_id: uuid.UUID) -> list[Payment]:
    invoice = await get_invoice(session, actor, invoice_id)
    stmt = select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.created_at, Payment.id)
    return list((await session.execute(stmt)).scalars())
