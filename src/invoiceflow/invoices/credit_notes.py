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
- Document-level allowances and charges (EN 16931 BG-20 / BG-21) are credited like lines: each credit note
  row keeps the `position` of the invoice's allowance or charge, and what remains creditable of it is its
  amount minus those positions' amounts on the live credit notes. A full credit takes every line and every
  allowance and charge that remain, and when it is the invoice's only credit note it also takes the invoice's
  rounding amount (BT-114), so its totals and amount due equal the invoice's. A partial credit takes the
  allowances and charges the request names (default none).
- Never over-credited in money: for an invoice with allowances or charges, the quantity rule alone is not
  enough (crediting every line but not a discount would credit more than was invoiced). So, over all its live
  credit notes, the taxable amount credited in each VAT group may not exceed the invoice's taxable amount in
  that group, except by the credit note that credits everything that remains (it may differ by the line
  rounding of partial quantities, as credit notes of invoices without allowances always could).

Emits CreditNoteCreated (the invoice money payload plus the credited invoice's id and number); audit
action `credit_note.create`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import Conflict, ValidationFailed
from invoiceflow.core.models import Organization
from invoiceflow.core.money import format_amount, trim
from invoiceflow.invoices import transitions
from invoiceflow.invoices.models import Invoice, InvoiceAllowanceCharge, InvoiceLine
from invoiceflow.invoices.schemas import CreditedAllowanceChargeIn, CreditedLineIn
from invoiceflow.invoices.service import (
    _group_key,
    _insert_rows,
    _money_payload,
    _number_and_announce,
    _totals_of,
    check_totals,
    get_invoice,
)

SERIES = "credit_note"
ZERO = Decimal("0")


Group = tuple[str, Decimal]  # (VAT category, normalised rate)


@dataclass
class _Credited:
    """What the invoice's live credit notes (not deleted, not cancelled; drafts count) credit already."""

    quantities: dict[int, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))  # per line position
    amounts: dict[int, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))  # per allowance/charge
    taxable: dict[Group, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))  # per VAT group


def _of_live_credit_notes(invoice: Invoice) -> tuple[ColumnElement[bool], ...]:
    return (
        Invoice.organization_id == invoice.organization_id,
        Invoice.credited_invoice_id == invoice.id,
        Invoice.kind == "credit_note",
        Invoice.deleted_at.is_(None),
        Invoice.status != "cancelled",
    )


async def _credited_so_far(session: AsyncSession, invoice: Invoice) -> _Credited:
    credited = _Credited()
    lines = (
        select(
            InvoiceLine.position,
            InvoiceLine.quantity,
            InvoiceLine.vat_category,
            InvoiceLine.vat_rate,
            InvoiceLine.line_total,
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(*_of_live_credit_notes(invoice))
    )
    for position, quantity, category, rate, net in await session.execute(lines):
        credited.quantities[position] += quantity
        credited.taxable[_group_key(category, rate)] += net
    if not invoice.allowances_charges:
        return credited
    adjustments = (
        select(
            InvoiceAllowanceCharge.position,
            InvoiceAllowanceCharge.is_charge,
            InvoiceAllowanceCharge.amount,
            InvoiceAllowanceCharge.vat_category,
            InvoiceAllowanceCharge.vat_rate,
        )
        .join(Invoice, Invoice.id == InvoiceAllowanceCharge.invoice_id)
        .where(*_of_live_credit_notes(invoice))
    )
    for position, is_charge, amount, category, rate in await session.execute(adjustments):
        credited.amounts[position] += amount
        credited.taxable[_group_key(category, rate)] += amount if is_charge else -amount
    return credited


def _chosen_allowances_charges(
    invoice: Invoice,
    credited: dict[int, Decimal],
    requested: list[CreditedAllowanceChargeIn] | None,
    *,
    full: bool,
) -> list[tuple[InvoiceAllowanceCharge, Decimal, str]]:
    """The invoice's allowances and charges to credit, with their amounts and the request field naming each."""
    remaining = {ac.position: ac.amount - credited.get(ac.position, ZERO) for ac in invoice.allowances_charges}
    if full:
        if requested is not None:
            raise ValidationFailed.field(
                "allowances_charges", "only with `lines`: a full credit credits every allowance and charge left"
            )
        return [
            (ac, remaining[ac.position], "allowances_charges")
            for ac in invoice.allowances_charges
            if remaining[ac.position] > 0
        ]
    by_position = {ac.position: ac for ac in invoice.allowances_charges}
    chosen = []
    seen: set[int] = set()
    for index, item in enumerate(requested or []):
        name = f"allowances_charges.{index}"
        adjustment = by_position.get(item.position)
        if adjustment is None:
            raise ValidationFailed.field(f"{name}.position", "the invoice has no allowance or charge at this position")
        if item.position in seen:
            raise ValidationFailed.field(f"{name}.position", "the same allowance or charge is named twice")
        seen.add(item.position)
        left = remaining[item.position]
        if left <= 0:
            raise ValidationFailed.field(f"{name}.position", "this allowance or charge is already fully credited")
        amount = left if item.amount is None else item.amount
        if amount > left:
            raise ValidationFailed.field(f"{name}.amount", f"exceeds what remains uncredited of it ({left})")
        chosen.append((adjustment, amount, name))
    return sorted(chosen, key=lambda chosen_item: chosen_item[0].position)


def _check_not_over_credited(
    invoice: Invoice,
    credited: _Credited,
    note_lines: Sequence[InvoiceLine],
    note_adjustments: Sequence[InvoiceAllowanceCharge],
) -> None:
    """Over all live credit notes, no VAT group is credited more than the invoice's taxable amount in it."""
    if not invoice.allowances_charges:
        return  # the quantity rule bounds every group already
    line_left = {ln.position: ln.quantity - credited.quantities.get(ln.position, ZERO) for ln in invoice.lines}
    for ln in note_lines:
        line_left[ln.position] -= ln.quantity
    amount_left = {
        ac.position: ac.amount - credited.amounts.get(ac.position, ZERO) for ac in invoice.allowances_charges
    }
    for ac in note_adjustments:
        amount_left[ac.position] -= ac.amount
    if not any(left > 0 for left in line_left.values()) and not any(left > 0 for left in amount_left.values()):
        return  # the credit note that credits everything that remains
    invoiced = {
        _group_key(g.vat_category, g.vat_rate): g.taxable_amount
        for g in _totals_of(invoice.lines, invoice.allowances_charges, invoice.currency).vat_breakdown
    }
    after = defaultdict(lambda: ZERO, credited.taxable)
    for ln in note_lines:
        after[_group_key(ln.vat_category, ln.vat_rate)] += ln.line_total
    for ac in note_adjustments:
        after[_group_key(ac.vat_category, ac.vat_rate)] += ac.amount if ac.is_charge else -ac.amount
    for (category, rate), amount in sorted(after.items()):
        limit = invoiced.get((category, rate), ZERO)
        if amount > limit:
            currency = invoice.currency
            raise ValidationFailed.field(
                "allowances_charges",
                f"the invoice's credit notes would credit {format_amount(amount, currency)} in VAT category "
                f"{category} at {trim(rate)} %, more than the {format_amount(limit, currency)} it invoiced there: "
                "credit its allowances with its lines",
            )


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
    allowances_charges: list[CreditedAllowanceChargeIn] | None = None,
    today: date | None = None,
) -> Invoice:
    """Create a draft credit note for `requested` lines of the invoice (None: all that remains uncredited,
    allowances and charges included) and, with chosen lines, the chosen `allowances_charges`."""
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
    credited = await _credited_so_far(session, invoice)
    chosen = _chosen_lines(invoice, credited.quantities, requested)
    full = requested is None
    chosen_adjustments = _chosen_allowances_charges(invoice, credited.amounts, allowances_charges, full=full)
    currency = invoice.currency
    lines = [
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
        )
        for line, qty in chosen
    ]
    adjustments = [
        InvoiceAllowanceCharge(
            id=uuid.uuid4(),
            position=ac.position,  # the credited allowance's or charge's position
            is_charge=ac.is_charge,
            amount=amount,
            reason=ac.reason,
            reason_code=ac.reason_code,
            vat_category=ac.vat_category,
            vat_rate=ac.vat_rate,
            vat_exemption_reason=ac.vat_exemption_reason,
        )
        for ac, amount, _ in chosen_adjustments
    ]
    # The invoice's rounding amount goes with a credit of the whole invoice in one credit note only.
    rounding = invoice.rounding_amount if full and not credited.quantities else ZERO
    totals = _totals_of(lines, adjustments, currency)
    for line, net in zip(lines, totals.line_totals, strict=True):
        line.line_total = net
    check_totals(
        totals,
        lines,
        adjustments,
        rounding,
        currency,
        fields=[n for _, _, n in chosen_adjustments],
        lines_field="lines",
    )
    _check_not_over_credited(invoice, credited, lines, adjustments)
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
        rounding_amount=rounding,
        sent_at=None,
        paid_at=None,
        created_at=now,
        updated_at=now,
        deleted_at=None,
        lines=lines,
        allowances_charges=adjustments,
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
