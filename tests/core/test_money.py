"""Money and totals (core/money.py, core/tax.py): property tests against an exact Fraction oracle."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import StatementError

from invoiceflow.core.db import Amount
from invoiceflow.core.money import format_amount, minor_unit, round_money, trim
from invoiceflow.core.tax import LineInput, Totals, compute_totals, line_net

CURRENCIES = ["EUR", "JPY", "BHD", "USD"]


def half_up(value: Fraction, places: int) -> Decimal:
    """The oracle: exact half-up (away from zero) rounding of a non-negative rational, independent of decimal."""
    assert value >= 0
    scaled = math.floor(value * 10**places + Fraction(1, 2))
    return Decimal(scaled).scaleb(-places)


def decimals(max_value: int, max_places: int, *, allow_zero: bool) -> st.SearchStrategy[Decimal]:
    """Decimals with 0..max_places places, up to max_value: the ranges the API accepts (core/schemas.py)."""

    def with_places(places: int) -> st.SearchStrategy[Decimal]:
        low = 0 if allow_zero else 1
        return st.integers(low, max_value * 10**places).map(lambda n: Decimal(n).scaleb(-places))

    return st.integers(0, max_places).flatmap(with_places)


# Mostly everyday amounts, sometimes the extremes the schema still accepts (1e9 x 1e9).
quantities = st.one_of(decimals(1000, 6, allow_zero=False), decimals(10**9, 6, allow_zero=False))
prices = st.one_of(decimals(100_000, 6, allow_zero=True), decimals(10**9, 6, allow_zero=True))
standard_rates = st.one_of(
    st.sampled_from([Decimal(r) for r in ("21", "20", "19", "6", "5.5", "7.7", "12", "0.01", "100", "25.50")]),
    decimals(100, 2, allow_zero=False),
)
vat = st.one_of(
    st.tuples(st.just("S"), standard_rates),
    st.tuples(st.sampled_from(["Z", "E", "AE", "K", "G", "O"]), st.sampled_from([Decimal("0"), Decimal("0.00")])),
)
lines_strategy = st.lists(
    st.builds(lambda q, p, v: LineInput(q, p, v[0], v[1]), quantities, prices, vat), min_size=1, max_size=12
)


def assert_no_float(value: Any, path: str = "totals") -> None:
    """Walk the result: every number is a Decimal, nothing is a float."""
    assert not isinstance(value, float), f"float at {path}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            assert_no_float(getattr(value, field.name), f"{path}.{field.name}")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            assert_no_float(item, f"{path}[{i}]")
    else:
        assert isinstance(value, (Decimal, str)), f"{type(value).__name__} at {path}"


def assert_money(value: Decimal, currency: str) -> None:
    assert isinstance(value, Decimal)
    assert value.is_finite()
    # Exactly the currency's decimals: the API shows "12.50", "1250" (JPY), "1.250" (BHD).
    assert value.as_tuple().exponent == -minor_unit(currency), (value, currency)


@settings(max_examples=300, deadline=None)
@given(lines=lines_strategy, currency=st.sampled_from(CURRENCIES))
def test_compute_totals_properties(lines: list[LineInput], currency: str) -> None:
    places = minor_unit(currency)
    totals = compute_totals(lines, currency)
    assert isinstance(totals, Totals)
    assert_no_float(totals)

    # BT-131: each line net = quantity x price, rounded half-up to the minor unit.
    expected_nets = [half_up(Fraction(li.quantity) * Fraction(li.unit_price), places) for li in lines]
    assert list(totals.line_totals) == expected_nets
    for net in totals.line_totals:
        assert_money(net, currency)

    # BR-CO-10: sum of line nets; BG-23: the breakdown covers every line exactly once.
    assert totals.net_amount == sum(expected_nets, Decimal(0))
    assert sum((g.taxable_amount for g in totals.vat_breakdown), Decimal(0)) == totals.net_amount

    groups: dict[tuple[str, Fraction], Fraction] = {}
    for li, net in zip(lines, expected_nets, strict=True):
        key = (li.vat_category, Fraction(li.vat_rate))
        groups[key] = groups.get(key, Fraction(0)) + Fraction(net)
    assert len(totals.vat_breakdown) == len(groups)
    for group in totals.vat_breakdown:
        taxable = groups[(group.vat_category, Fraction(group.vat_rate))]
        assert Fraction(group.taxable_amount) == taxable
        # BR-CO-17: category VAT = taxable x rate / 100, rounded.
        assert group.vat_amount == half_up(taxable * Fraction(group.vat_rate) / 100, places)
        assert_money(group.taxable_amount, currency)
        assert_money(group.vat_amount, currency)

    # BR-CO-14 and BR-CO-15.
    assert totals.vat_amount == sum((g.vat_amount for g in totals.vat_breakdown), Decimal(0))
    assert totals.total_amount == totals.net_amount + totals.vat_amount
    for amount in (totals.net_amount, totals.vat_amount, totals.total_amount):
        assert_money(amount, currency)


@given(
    q=decimals(10**9, 6, allow_zero=False),
    p=decimals(10**9, 6, allow_zero=True),
    currency=st.sampled_from(CURRENCIES),
)
# 999958333.333335 x 999999999.999997 = 999958333333332000.124999999995 exactly (33 digits): the default
# 28-digit context rounded it to ...000.1250000000 first, and half-up then gave .13 instead of .12.
@example(q=Decimal("999958333.333335"), p=Decimal("999999999.999997"), currency="EUR")
def test_line_net_is_exact_for_the_largest_inputs(q: Decimal, p: Decimal, currency: str) -> None:
    assert line_net(q, p, currency) == half_up(Fraction(q) * Fraction(p), minor_unit(currency))


def test_line_net_double_rounding_regression() -> None:
    assert line_net(Decimal("999958333.333335"), Decimal("999999999.999997"), "EUR") == Decimal("999958333333332000.12")


def test_same_rate_written_differently_is_one_group() -> None:
    totals = compute_totals(
        [
            LineInput(Decimal("1"), Decimal("10.00"), "S", Decimal("21")),
            LineInput(Decimal("1"), Decimal("5.00"), "S", Decimal("21.00")),
            LineInput(Decimal("1"), Decimal("4.00"), "Z", Decimal("0")),
        ],
        "EUR",
    )
    assert [(g.vat_category, g.taxable_amount, g.vat_amount) for g in totals.vat_breakdown] == [
        ("S", Decimal("15.00"), Decimal("3.15")),
        ("Z", Decimal("4.00"), Decimal("0.00")),
    ]
    assert totals.total_amount == Decimal("22.15")


def test_vat_is_rounded_per_group_not_per_line() -> None:
    # Three lines of 0.10 at 5%: per line 0.005 -> 0.01 each (0.03); per group 0.015 -> 0.02 (BR-CO-17).
    line = LineInput(Decimal("1"), Decimal("0.10"), "S", Decimal("5"))
    totals = compute_totals([line, line, line], "EUR")
    assert totals.vat_amount == Decimal("0.02")
    assert totals.total_amount == Decimal("0.32")


def test_no_lines_gives_zero_totals() -> None:
    totals = compute_totals([], "EUR")
    assert totals.line_totals == ()
    assert totals.vat_breakdown == ()
    assert totals.total_amount == 0


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("2.675", "EUR", "2.68"),  # the classic float trap: 2.675 as a float is 2.67499999...
        ("0.125", "EUR", "0.13"),
        ("0.124999", "EUR", "0.12"),
        ("0.005", "USD", "0.01"),
        ("0.5", "JPY", "1"),
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "3"),  # half-up, not banker's rounding
        ("0.4999", "JPY", "0"),
        ("1.0005", "BHD", "1.001"),
        ("-2.675", "EUR", "-2.68"),  # away from zero on .5
        ("7", "EUR", "7.00"),
    ],
)
def test_round_money_half_up(value: str, currency: str, expected: str) -> None:
    result = round_money(Decimal(value), currency)
    assert isinstance(result, Decimal)
    assert str(result) == expected
    assert format_amount(Decimal(value), currency) == expected


@pytest.mark.parametrize("bad", [2.675, 1, "2.675", None])
def test_round_money_refuses_non_decimal(bad: object) -> None:
    with pytest.raises(TypeError):
        round_money(bad, "EUR")  # type: ignore[arg-type]


def test_minor_units() -> None:
    assert (minor_unit("EUR"), minor_unit("USD"), minor_unit("JPY"), minor_unit("BHD")) == (2, 2, 0, 3)


@pytest.mark.parametrize(
    ("value", "min_places", "expected"),
    [
        ("2.000000", 0, "2"),
        ("100", 0, "100"),  # not "1E+2"
        ("1E+2", 0, "100"),
        ("0.125000", 2, "0.125"),
        ("49.900000", 2, "49.90"),
        ("49.9", 2, "49.90"),
        ("0.000", 2, "0.00"),
        ("0", 0, "0"),
        ("21.00", 0, "21"),
        ("5.50", 0, "5.5"),
        ("1000000000.000000", 6, "1000000000.000000"),
    ],
)
def test_trim(value: str, min_places: int, expected: str) -> None:
    result = trim(Decimal(value), min_places)
    assert str(result) == expected
    assert result == Decimal(value)


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_amount_type_refuses_float_and_extra_places(dialect: Any) -> None:
    column_type = Amount(4)
    with pytest.raises(TypeError):
        column_type.process_bind_param(1.5, dialect)
    with pytest.raises(ValueError, match="more than 4 decimal places"):
        column_type.process_bind_param(Decimal("1.23456"), dialect)
    assert column_type.process_bind_param(None, dialect) is None
    # Trailing zeros beyond the scale are not extra precision.
    assert column_type.process_bind_param(Decimal("1.230000"), dialect) == (
        12300 if dialect.name == "sqlite" else Decimal("1.230000")
    )


def test_amount_column_round_trips_exactly(sync_engine: Engine) -> None:
    """Through a real table on each backend: exact values back, floats and extra places refused, order kept."""
    metadata = MetaData()
    table = Table(
        f"amount_probe_{sync_engine.dialect.name}",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("value", Amount(4)),
    )
    values = [Decimal("0.0001"), Decimal("-12.5"), Decimal("123456789012.3456"), Decimal("0"), Decimal("9.99")]
    metadata.create_all(sync_engine)
    try:
        with sync_engine.begin() as conn:
            conn.execute(insert(table), [{"id": i, "value": v} for i, v in enumerate(values)])
        with sync_engine.connect() as conn:
            rows = conn.execute(select(table.c.value).order_by(table.c.id)).scalars().all()
            ordered = conn.execute(select(table.c.value).order_by(table.c.value)).scalars().all()
            above = conn.execute(select(table.c.value).where(table.c.value > Decimal("9.98"))).scalars().all()
        assert rows == values
        assert all(isinstance(v, Decimal) for v in rows)
        assert ordered == sorted(values)
        assert sorted(above) == [Decimal("9.99"), Decimal("123456789012.3456")]
        for bad, error in ((0.1, TypeError), (Decimal("0.00001"), ValueError)):
            with pytest.raises(StatementError) as info, sync_engine.begin() as conn:
                conn.execute(insert(table), {"id": 99, "value": bad})
            assert isinstance(info.value.orig, error)
    finally:
        metadata.drop_all(sync_engine)
