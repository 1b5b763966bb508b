"""Credit notes: crediting an issued invoice in full or for chosen lines (EN 16931 document type 381).

Decisions (see also the status table in `transitions.py`):

- A credit note is a row of `invoices` with `kind = "credit_note"` and `credited_invoice_id`, lines in
  `invoice_lines`: every read, list, document and export route works on it unchanged.
- Sign: quantities and amounts are positive, as in a UBL CreditNote; the document type says it is a credit.
  Reports that net invoices against credit notes subtract by `kind`.
- Each credit note line keeps the `position` of the invoice line it credits. What remains uncredited on a
  line is its quantity minus the same position's quantities on the invoice's live credit notes (not
  deleted, not cancelled; drafts count, so two drafts cannot credit a line twice). The invoice row is
  locked first, so concurrent credits of one invoice are checked one after the other.
- Lifecycle: created as a draft to be reviewed, then draft → sent | cancelled, sent → paid (settled), never
  overdue (the seller owes the money). It cannot be edited (cancel or delete the draft and issue another),
  nor itself credited.
- Numbers come from the organisation's `credit_note_number_pattern` in the series "credit_note", taken by
  the same last-statement-before-COMMIT numbering as invoices (ADR 0002), so both series stay gapless and
  independent. Never the single-statement create of ADR 0004: this path reads and locks before it writes.
- Dates: issued today (never before the credited invoice), due the same day (the credit is owed at once).

Emits CreditNoteCreated (the invoice money payload plus the credited invoice's id and number); audit
action `credit_note.create`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import Conflict, ValidationFailed
from invoiceflow.core.models import Organization
from invoiceflow.core.tax import MAX_AMOUNT, LineInput, compute_totals, within_limits
from invoiceflow.invoices import transitions
from invoiceflow.invoices.models import Invoice, InvoiceLine
from invoiceflow.invoices.schemas import CreditedLineIn
from invoiceflow.invoices.service import _insert_rows, _money_payload, _number_and_announce, get_invoice

SERIES = "credit_note"
ZERO = Decimal("0")


async def _credited_so_far(session: AsyncSession, invoice: Invoice) -> dict[int, Decimal]:
    """Quantity already credited per line position by the invoice's live credit notes."""
    stmt = (
        select(InvoiceLine.position, InvoiceLine.quantity)
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(
            Invoice.organization_id == invoice.organization_id,
            Invoice.credited_invoice_id == invoice.id,
            Invoice.kind == "credit_note",
            Invoice.deleted_at.is_(None),
            Invoice.status != "cancelled",
        )
    )
    credited: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for position, quantity in await session.execute(stmt):
        credited[position] += quantity
    return credited


def _chosen_lines(
    invoice: Invoice, credited: dict[int, Decimal], requested: list[CreditedLineIn] | None
) -> list[tuple[InvoiceLine, Decimal]]:
    """The invoice lines to credit with their quantities; field errors name the request's `lines.N.*`."""
    remaining = {ln.position: ln.quantity - credited.get(ln.position, ZERO) for ln in invoice.lines}
    if requested is None:
        chosen = [(ln, remaining[ln.position]) for ln in invoice.lines if remaining[ln.position] > 0]
        if not chosen:
            raise Conflict(
                f"Invoice {invoice.invoice_number} is already fully credited",
                code="INVOICE_FULLY_CREDITED",
                details={"invoice_id": str(invoice.id)},
            )
        return chosen
    by_position = {ln.position: ln for ln in invoice.lines}
    chosen = []
    seen: set[int] = set()
    for index, item in enumerate(requested):
        line = by_position.get(item.position)
        if line is None:
            raise ValidationFailed.field(f"lines.{index}.position", "the invoice has no line at this position")
        if item.position in seen:
            raise ValidationFailed.field(f"lines.{index}.position", "the same line is named twice")
        seen.add(item.position)
        left = remaining[item.position]
        quantity = left if item.quantity is None else item.quantity
        if left <= 0:
            raise ValidationFailed.field(f"lines.{index}.position", "this line is already fully credited")
        if quantity > left:
            raise ValidationFailed.field(
                f"lines.{index}.quantity", f"exceeds the quantity that remains uncredited on the line ({left})"
            )
        chosen.append((line, quantity))
    # In the credited invoice's order, as the credit note's lines are read back (by position).
    return sorted(chosen, key=lambda pair: pair[0].position)


async def _pattern(session: AsyncSession, organization_id: uuid.UUID) -> str:
    stmt = select(Organization.credit_note_number_pattern).where(Organization.id == organization_id)
    return str((await session.execute(stmt)).scalar_one())


async def credit_invoice(
    session: AsyncSession,
    actor: Actor,
    invoice_id: uuid.UUID,
    requested: list[CreditedLineIn] | None,
    *,
    today: date | None = None,
) -> Invoice:
    """Create a draft credit note for `requested` lines of the invoice (None: all that remains uncredited)."""
    invoice = await get_invoice(session, actor, invoice_id, for_update=True)
    if invoice.kind == "credit_note":
        raise Conflict(
            "A credit note cannot be credited",
            code="CREDIT_NOTE_NOT_CREDITABLE",
            details={"invoice_id": str(invoice.id)},
        )
    if invoice.status not in transitions.CREDITABLE:
        raise Conflict(
            f"A {invoice.status} invoice cannot be credited; only an issued invoice can",
            code="INVOICE_NOT_CREDITABLE",
            details={"status": invoice.status, "creditable_statuses": sorted(transitions.CREDITABLE)},
        )
    chosen = _chosen_lines(invoice, await _credited_so_far(session, invoice), requested)
    currency = invoice.currency
    totals = compute_totals(
        [LineInput(qty, line.unit_price, line.vat_category, line.vat_rate) for line, qty in chosen], currency
    )
    if totals.total_amount <= 0:
        raise ValidationFailed.field("lines", "the credited total must be greater than zero")
    if not within_limits(totals):  # pragma: no cover - bounded by the credited invoice's own amounts
        raise ValidationFailed.field("lines", f"amounts may not exceed {MAX_AMOUNT}")
    issue = max(today or utcnow().date(), invoice.issue_date)
    now = utcnow()
    note = Invoice(
        id=uuid.uuid4(),
        organization_id=invoice.organization_id,
        kind="credit_note",
        credited_invoice_id=invoice.id,
        client_id=invoice.client_id,
        order_id=None,
        invoice_number=None,
        status="draft",
        issue_date=issue,
        due_date=issue,
        currency=currency,
        notes=f"Credit note for invoice {invoice.invoice_number}",
        buyer_reference=invoice.buyer_reference,
        external_id=None,
        net_amount=totals.net_amount,
        vat_amount=totals.vat_amount,
        total_amount=totals.total_amount,
        amount_paid=ZERO,
        sent_at=None,
        paid_at=None,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        lines=[
            InvoiceLine(
                id=uuid.uuid4(),
                position=line.position,  # the credited line's position: see the module docstring
                description=line.description,
                quantity=qty,
                unit_code=line.unit_code,
                unit_price=line.unit_price,
                vat_category=line.vat_category,
                vat_rate=line.vat_rate,
                vat_exemption_reason=line.vat_exemption_reason,
                line_total=net,
            )
            for (line, qty), net in zip(chosen, totals.line_totals, strict=True)
        ],
    )
    await _insert_rows(session, actor, note, action="credit_note.create")
    payload = {
        **_money_payload(note),
        "kind": "credit_note",
        "credited_invoice_id": str(invoice.id),
        "credited_invoice_number": invoice.invoice_number,
    }
    # The last write of the transaction: the counter row stays locked until COMMIT (ADR 0002).
    await _number_and_announce(
        session,
        invoice.organization_id,
        await _pattern(session, invoice.organization_id),
        note,
        series=SERIES,
        event_type="CreditNoteCreated",
        payload=payload,
    )
    return note
