"""Line nets, VAT breakdown and document totals (EN 16931), as pure functions over plain data.

Orders and invoices both use this, so the API, the PDF, the Excel file and the XML can never disagree.
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
class VatGroup:
    vat_category: str
    vat_rate: Decimal
    taxable_amount: Decimal
    vat_amount: Decimal


@dataclass(frozen=True, slots=True)
class Totals:
    line_totals: tuple[Decimal, ...]
    vat_breakdown: tuple[VatGroup, ...]
    net_amount: Decimal
    vat_amount: Decimal
    total_amount: Decimal


# Products and sums are computed exactly: a 16-digit quantity times a 16-digit price needs 32 digits, and
# the default context (28 digits, half-even) would round before the half-up rounding to the currency.
_EXACT_DIGITS = 100


def line_net(quantity: Decimal, unit_price: Decimal, currency: str) -> Decimal:
    # EN 16931 BT-131: invoice line net amount = quantity x net price, rounded to the currency.
    with localcontext(prec=_EXACT_DIGITS):
        return round_money(quantity * unit_price, currency)


def compute_totals(lines: Sequence[LineInput], currency: str) -> Totals:
    with localcontext(prec=_EXACT_DIGITS):
        return _compute_totals(lines, currency)


def _compute_totals(lines: Sequence[LineInput], currency: str) -> Totals:
    nets = tuple(line_net(line.quantity, line.unit_price, currency) for line in lines)
    groups: dict[tuple[str, Decimal], Decimal] = {}
    for line, net in zip(lines, nets, strict=True):
        key = (line.vat_category, line.vat_rate.normalize())
        groups[key] = groups.get(key, ZERO) + net
    breakdown = tuple(
        # EN 16931 BR-CO-17: VAT category tax amount = taxable amount x rate / 100, rounded.
        VatGroup(category, rate, taxable, round_money(taxable * rate / HUNDRED, currency))
        for (category, rate), taxable in sorted(groups.items(), key=lambda item: (item[0][0], -item[0][1]))
    )
    # EN 16931 BR-CO-10: sum of invoice line net amounts.
    net_total = _sum(nets)
    # EN 16931 BR-CO-14: invoice total VAT amount = sum of VAT category tax amounts.
    vat_total = _sum(group.vat_amount for group in breakdown)
    # EN 16931 BR-CO-15: invoice total amount with VAT = total without VAT + total VAT.
    return Totals(nets, breakdown, net_total, vat_total, net_total + vat_total)


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total += value
    return total


# Largest amount any stored total may reach: PostgreSQL NUMERIC(20, 4) and SQLite's scaled 64-bit
# integers both hold it with room to spare.
MAX_AMOUNT = Decimal("100000000000000")  # 10^14


def within_limits(totals: Totals) -> bool:
    amounts = [*totals.line_totals, totals.net_amount, totals.vat_amount, totals.total_amount]
    return all(abs(a) <= MAX_AMOUNT for a in amounts)
