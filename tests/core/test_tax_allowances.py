"""Document-level allowances and charges and the rounding amount in `core.tax` (EN 16931 BG-20 / BG-21,
BT-106..BT-115): property tests against an exact Fraction oracle, and worked examples to the cent."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from invoiceflow.core.money import minor_unit, trim
from invoiceflow.core.tax import (
    AllowanceChargeInput,
    LineInput,
    amount_due,
    compute_totals,
    within_limits,
)
from tests.core.test_money import CURRENCIES, assert_money, assert_no_float, decimals, half_up, lines_strategy, vat


def half_away(value: Fraction, places: int) -> Decimal:
    """The oracle's half-up rounding for either sign: away from zero on .5, like `round_money`."""
    rounded = half_up(abs(value), places)
    return -rounded if value < 0 else rounded


adjustment_amounts = st.one_of(decimals(10_000, 4, allow_zero=False), decimals(10**9, 2, allow_zero=False))


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[LineInput], list[AllowanceChargeInput]]:
    """Lines, and allowances and charges mostly in the lines' VAT groups, sometimes in a group of their own."""
    lines = draw(lines_strategy)
    groups = [(line.vat_category, line.vat_rate) for line in lines]
    adjustments = []
    for _ in range(draw(st.integers(0, 6))):
        category, rate = draw(st.one_of(st.sampled_from(groups), vat))
        adjustments.append(AllowanceChargeInput(draw(st.booleans()), draw(adjustment_amounts), category, rate))
    return lines, adjustments


@settings(max_examples=300, deadline=None)
@given(document=documents(), currency=st.sampled_from(CURRENCIES))
def test_totals_with_allowances_and_charges_match_the_exact_oracle(
    document: tuple[list[LineInput], list[AllowanceChargeInput]], currency: str
) -> None:
    lines, adjustments = document
    places = minor_unit(currency)
    totals = compute_totals(lines, currency, adjustments)
    assert_no_float(totals)

    nets = [half_up(Fraction(li.quantity) * Fraction(li.unit_price), places) for li in lines]
    amounts = [half_up(Fraction(ac.amount), places) for ac in adjustments]
    assert list(totals.line_totals) == nets
    # BT-106, BT-107, BT-108 and BR-CO-13: BT-109 = BT-106 - BT-107 + BT-108.
    line_total = sum(nets, Decimal(0))
    allowances = sum((a for a, ac in zip(amounts, adjustments, strict=True) if not ac.is_charge), Decimal(0))
    charges = sum((a for a, ac in zip(amounts, adjustments, strict=True) if ac.is_charge), Decimal(0))
    assert totals.line_total_amount == line_total
    assert totals.allowance_total_amount == allowances
    assert totals.charge_total_amount == charges
    assert totals.net_amount == line_total - allowances + charges

    # BR-S-08 and siblings: a group's taxable amount = its lines - its allowances + its charges, exactly.
    groups: dict[tuple[str, Fraction], Fraction] = {}
    for li, net in zip(lines, nets, strict=True):
        key = (li.vat_category, Fraction(li.vat_rate))
        groups[key] = groups.get(key, Fraction(0)) + Fraction(net)
    for ac, amount in zip(adjustments, amounts, strict=True):
        key = (ac.vat_category, Fraction(ac.vat_rate))
        groups[key] = groups.get(key, Fraction(0)) + (Fraction(amount) if ac.is_charge else -Fraction(amount))
    # Every VAT category and rate used appears exactly once in the breakdown (BG-23).
    assert sorted((g.vat_category, Fraction(g.vat_rate)) for g in totals.vat_breakdown) == sorted(groups)
    for group in totals.vat_breakdown:
        taxable = groups[(group.vat_category, Fraction(group.vat_rate))]
        assert Fraction(group.taxable_amount) == taxable
        # BR-CO-17: rounded once per group, half away from zero.
        assert group.vat_amount == half_away(taxable * Fraction(group.vat_rate) / 100, places)
        assert_money(group.taxable_amount, currency)
        assert_money(group.vat_amount, currency)
    assert sum((g.taxable_amount for g in totals.vat_breakdown), Decimal(0)) == totals.net_amount

    # BR-CO-14 and BR-CO-15.
    assert totals.vat_amount == sum((g.vat_amount for g in totals.vat_breakdown), Decimal(0))
    assert totals.total_amount == totals.net_amount + totals.vat_amount
    for amount in (
        totals.line_total_amount,
        totals.allowance_total_amount,
        totals.charge_total_amount,
        totals.net_amount,
        totals.vat_amount,
        totals.total_amount,
    ):
        assert_money(amount, currency)


@given(
    total=decimals(10**6, 2, allow_zero=True),
    paid=decimals(10**6, 2, allow_zero=True),
    rounding=st.integers(-100, 100).map(lambda n: Decimal(n).scaleb(-2)),
    currency=st.sampled_from(["EUR", "USD"]),
)
def test_amount_due_is_total_minus_paid_plus_rounding(
    total: Decimal, paid: Decimal, rounding: Decimal, currency: str
) -> None:
    # EN 16931 BR-CO-16: BT-115 = BT-112 - BT-113 + BT-114.
    due = amount_due(total, paid, rounding, currency)
    assert Fraction(due) == Fraction(total) - Fraction(paid) + Fraction(rounding)
    assert_money(due, currency)


def test_amount_due_rounds_half_away_from_zero() -> None:
    assert amount_due(Decimal("10.0050"), Decimal(0), Decimal(0), "EUR") == Decimal("10.01")
    assert amount_due(Decimal("10"), Decimal("10.0050"), Decimal(0), "EUR") == Decimal("-0.01")
    assert amount_due(Decimal("1208"), Decimal(0), Decimal("-1"), "JPY") == Decimal("1207")
    assert amount_due(Decimal("2.717"), Decimal(0), Decimal("0.003"), "BHD") == Decimal("2.720")


def line(qty: str, price: str, category: str = "S", rate: str = "21") -> LineInput:
    return LineInput(Decimal(qty), Decimal(price), category, Decimal(rate))


def allowance(amount: str, category: str = "S", rate: str = "21") -> AllowanceChargeInput:
    return AllowanceChargeInput(False, Decimal(amount), category, Decimal(rate))


def charge(amount: str, category: str = "S", rate: str = "21") -> AllowanceChargeInput:
    return AllowanceChargeInput(True, Decimal(amount), category, Decimal(rate))


def groups(totals: object) -> list[tuple[str, str, str, str]]:
    return [
        (g.vat_category, str(trim(g.vat_rate)), str(g.taxable_amount), str(g.vat_amount))
        for g in totals.vat_breakdown  # type: ignore[attr-defined]
    ]


def test_a_discount_and_freight_to_the_cent() -> None:
    # Lines 375.00 at 21 % and 99.99 at 6 %; a 10 % volume discount on the 21 % group (37.50) and freight
    # 15.00 at 21 %: the 21 % group is 375.00 - 37.50 + 15.00 = 352.50 -> VAT 74.025 -> 74.03.
    totals = compute_totals(
        [line("3", "125.00"), line("1", "99.99", rate="6")],
        "EUR",
        [allowance("37.50"), charge("15.00")],
    )
    assert groups(totals) == [("S", "21", "352.50", "74.03"), ("S", "6", "99.99", "6.00")]
    assert (totals.line_total_amount, totals.allowance_total_amount, totals.charge_total_amount) == (
        Decimal("474.99"),
        Decimal("37.50"),
        Decimal("15.00"),
    )
    assert (totals.net_amount, totals.vat_amount, totals.total_amount) == (
        Decimal("452.49"),
        Decimal("80.03"),
        Decimal("532.52"),
    )


def test_vat_of_a_group_is_computed_after_its_allowances_not_per_item() -> None:
    # BR-CO-17 on the group's net after its allowance: (10.00 - 0.10) x 5 % = 0.495 -> 0.50. Subtracting the
    # allowance's own VAT (0.005 -> 0.01) from the line's (0.50) would give 0.49.
    totals = compute_totals([line("1", "10.00", rate="5")], "EUR", [allowance("0.10", rate="5")])
    assert groups(totals) == [("S", "5", "9.90", "0.50")]


def test_a_charge_may_open_a_vat_group_no_line_has() -> None:
    totals = compute_totals([line("2", "10.00", rate="9")], "EUR", [charge("4.95")])
    assert groups(totals) == [("S", "21", "4.95", "1.04"), ("S", "9", "20.00", "1.80")]
    assert totals.total_amount == Decimal("27.79")


def test_an_allowance_alone_makes_a_negative_group_that_callers_refuse() -> None:
    totals = compute_totals([line("1", "100")], "EUR", [allowance("10", "Z", "0")])
    assert groups(totals) == [("S", "21", "100.00", "21.00"), ("Z", "0", "-10.00", "0.00")]
    assert totals.net_amount == Decimal("90.00")


def test_rates_written_differently_share_a_group_with_the_lines() -> None:
    totals = compute_totals([line("1", "100", rate="21.00")], "EUR", [allowance("1", rate="21")])
    assert groups(totals) == [("S", "21", "99.00", "20.79")]


def test_amounts_are_rounded_to_the_currency() -> None:
    totals = compute_totals([line("1", "1000")], "JPY", [allowance("10.5", "S", "10")])
    assert totals.allowance_total_amount == Decimal("11")
    totals = compute_totals([line("1", "1", rate="10")], "BHD", [charge("0.0005", rate="10")])
    assert totals.charge_total_amount == Decimal("0.001")
    assert groups(totals) == [("S", "10", "1.001", "0.100")]


def test_limits_cover_allowances_and_charges() -> None:
    huge = Decimal("100000000000001")
    assert not within_limits(compute_totals([line("1", "1")], "EUR", [charge(str(huge))]))
    # An allowance as large leaves a total in range but a group out of it.
    assert not within_limits(compute_totals([line("1", "1")], "EUR", [allowance(str(huge))]))
    assert within_limits(compute_totals([line("1", "1")], "EUR", [allowance("0.5")]))


def test_no_allowances_gives_the_lines_totals() -> None:
    totals = compute_totals([line("3", "0.335")], "EUR")
    assert totals.line_total_amount == totals.net_amount == Decimal("1.01")
    assert totals.allowance_total_amount == totals.charge_total_amount == Decimal("0.00")
