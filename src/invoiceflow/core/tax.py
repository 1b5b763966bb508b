"""Line nets, VAT breakdown and document totals (EN 16931), as pure functions over plain data.

Orders and invoices both use this, so the API, the PDF, the Excel file and the XML can never disagree.
Document-level allowances and charges (BG-20 / BG-21) belong to one VAT group each and change that group's
taxable amount before its VAT is computed; they may make a group or the document negative here, and it is
the callers' business to refuse that (invoices do: corrections are credit notes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from invoiceflow.core.money import HUNDRED, ZERO, round_money


@dataclass(frozen=True, slots=True)
class LineInput:
    quantity: Decimal
    unit_price: Decimal
    vat_category: str
    vat_rate: Decimal


@dataclass(frozen=True, slots=True)
class AllowanceChargeInput:
    """A document-level allowance (`is_charge` False, BG-20) or charge (True, BG-21): a positive amount that
    lowers or raises the taxable amount of its VAT group."""

    is_charge: bool
    amount: Decimal
    vat_category: str
    vat_rate: Decimal


@dataclass(frozen=True, slots=True)
class VatGroup:
    vat_category: str
    vat_rate: Decimal
    taxable_amount: Decimal
    vat_amount: Decimal


@dataclass(frozen=True, slots=True)
class Totals:
    line_totals: tuple[Decimal, ...]  # BT-131 per line
    vat_breakdown: tuple[VatGroup, ...]  # BG-23
    net_amount: Decimal  # BT-109: total without VAT (lines - allowances + charges)
    vat_amount: Decimal  # BT-110
    total_amount: Decimal  # BT-112: total with VAT
    line_total_amount: Decimal  # BT-106: sum of line nets
    allowance_total_amount: Decimal  # BT-107
    charge_total_amount: Decimal  # BT-108


# Products and sums are computed exactly: a 16-digit quantity times a 16-digit price needs 32 digits, and
# the default context (28 digits, half-even) would round before the half-up rounding to the currency.
_EXACT_DIGITS = 100


def line_net(quantity: Decimal, unit_price: Decimal, currency: str) -> Decimal:
    # EN 16931 BT-131: invoice line net amount = quantity x net price, rounded to the currency.
    with localcontext(prec=_EXACT_DIGITS):
        return round_money(quantity * unit_price, currency)


def compute_totals(
    lines: Sequence[LineInput], currency: str, allowances_charges: Sequence[AllowanceChargeInput] = ()
) -> Totals:
    """The document's totals. Allowance and charge amounts are rounded to the currency first (callers refuse
    amounts with more decimals, so that is a no-op for stored invoices)."""
    with localcontext(prec=_EXACT_DIGITS):
        return _compute_totals(lines, currency, allowances_charges)


def _compute_totals(
    lines: Sequence[LineInput], currency: str, allowances_charges: Sequence[AllowanceChargeInput]
) -> Totals:
    nets = tuple(line_net(line.quantity, line.unit_price, currency) for line in lines)
    groups: dict[tuple[str, Decimal], Decimal] = {}
    for line, net in zip(lines, nets, strict=True):
        key = (line.vat_category, line.vat_rate.normalize())
        groups[key] = groups.get(key, ZERO) + net
    allowance_total = charge_total = round_money(ZERO, currency)
    for item in allowances_charges:
        amount = round_money(item.amount, currency)
        key = (item.vat_category, item.vat_rate.normalize())
        # EN 16931 BR-S-08 (and BR-Z-08, BR-E-08, BR-AE-08, BR-IC-08, BR-G-08, BR-O-08): a group's taxable
        # amount = its line nets - its document-level allowances + its document-level charges.
        if item.is_charge:
            groups[key] = groups.get(key, ZERO) + amount
            charge_total += amount
        else:
            groups[key] = groups.get(key, ZERO) - amount
            allowance_total += amount
    breakdown = tuple(
        # EN 16931 BR-CO-17: VAT category tax amount = taxable amount x rate / 100, rounded.
        VatGroup(category, rate, taxable, _group_vat(taxable, rate, currency))
        for (category, rate), taxable in sorted(groups.items(), key=lambda item: (item[0][0], -item[0][1]))
    )
    # EN 16931 BR-CO-10: sum of invoice line net amounts.
    line_total = _sum(nets)
    # EN 16931 BR-CO-13: total without VAT = sum of line nets - sum of allowances + sum of charges.
    net_total = line_total - allowance_total + charge_total
    # EN 16931 BR-CO-14: invoice total VAT amount = sum of VAT category tax amounts.
    vat_total = _sum(group.vat_amount for group in breakdown)
    # EN 16931 BR-CO-15: invoice total amount with VAT = total without VAT + total VAT.
    return Totals(
        nets,
        breakdown,
        net_total,
        vat_total,
        net_total + vat_total,
        line_total,
        allowance_total,
        charge_total,
    )


def _group_vat(taxable: Decimal, rate: Decimal, currency: str) -> Decimal:
    vat = round_money(taxable * rate / HUNDRED, currency)
    # A negative group (an allowance larger than what it reduces) at 0 % gives -0.00: zero has no sign.
    return abs(vat) if vat.is_zero() else vat


def amount_due(total_amount: Decimal, paid_amount: Decimal, rounding_amount: Decimal, currency: str) -> Decimal:
    """EN 16931 BR-CO-16: amount due for payment (BT-115) = total with VAT (BT-112) - paid amount (BT-113)
    + rounding amount (BT-114), shown with the currency's decimals."""
    return round_money(total_amount - paid_amount + rounding_amount, currency)


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total += value
    return total


# Largest amount any stored total may reach: PostgreSQL NUMERIC(20, 4) and SQLite's scaled 64-bit
# integers both hold it with room to spare.
MAX_AMOUNT = Decimal("100000000000000")  # 10^14


def within_limits(totals: Totals) -> bool:
    amounts = [
        *totals.line_totals,
        *(group.taxable_amount for group in totals.vat_breakdown),
        totals.line_total_amount,
        totals.allowance_total_amount,
        totals.charge_total_amount,
        totals.net_amount,
        totals.vat_amount,
        totals.total_amount,
    ]
    return all(abs(a) <= MAX_AMOUNT for a in amounts)
