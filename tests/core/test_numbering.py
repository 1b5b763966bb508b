"""Document number patterns (core/numbering.py): validation, counter periods and formatting."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoiceflow.core.numbering import PatternError, format_number, period_for, validate_pattern


@pytest.mark.parametrize(
    "pattern",
    [
        "INV-{YYYY}-{SEQ:05}",
        "{SEQ}",
        "{SEQ:09}",
        "F{YY}{MM}/{SEQ:04}",
        "INV_{YYYY}.{MM}#{SEQ}",
        "{YYYY}{SEQ:06}",
        "CN-{SEQ:03}",
    ],
)
def test_validate_pattern_accepts(pattern: str) -> None:
    assert validate_pattern(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("INV-{YYYY}", "exactly one"),  # no counter
        ("INV-{SEQ}-{SEQ:03}", "exactly one"),  # two counters
        ("", "exactly one"),
        ("{seq}", "exactly one"),  # tokens are upper case
        ("INV-{DD}-{SEQ}", "unknown token"),
        ("{YEAR}-{SEQ}", "unknown token"),
        ("{YYYY:04}-{SEQ}", "only {SEQ} takes a width"),
        ("INV {SEQ}", "literal"),  # space
        ("INV-{SEQ:5}", "exactly one"),  # a width needs its leading zero: this is no token at all
        ("{SEQ:5}-{SEQ}", "literal"),  # ... so with a real counter beside it, it is a stray brace
        ("INV-{SEQ:010}", "exactly one"),  # one digit of width at most
        ("INV-{{SEQ}}", "literal"),
        ("INV-{SEQ}}", "literal"),
        ("INV-{ SEQ }", "exactly one"),
        ("FACTÜRE-{SEQ}", "literal"),
        ("INV%{SEQ}", "literal"),
        ("INV-{MM}-{SEQ}", "needs a year"),
    ],
)
def test_validate_pattern_refuses(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        validate_pattern(pattern)


def test_pattern_error_is_a_value_error() -> None:
    # Pydantic validators and callers catch ValueError.
    assert issubclass(PatternError, ValueError)


@pytest.mark.parametrize(
    ("pattern", "issue", "period"),
    [
        ("INV-{YYYY}-{SEQ:05}", date(2026, 1, 1), "2026"),
        ("INV-{YYYY}-{SEQ:05}", date(2026, 12, 31), "2026"),
        ("INV-{YY}-{SEQ}", date(2027, 3, 1), "2027"),
        ("INV-{YYYY}{MM}-{SEQ}", date(2026, 2, 28), "2026-02"),
        ("INV-{SEQ:05}", date(2026, 1, 1), ""),
        ("INV-{SEQ:05}", date(2031, 7, 4), ""),
    ],
)
def test_period_for(pattern: str, issue: date, period: str) -> None:
    assert period_for(pattern, issue) == period


@given(a=st.dates(), b=st.dates())
def test_counter_resets_per_year_only_when_the_pattern_shows_a_year(a: date, b: date) -> None:
    # With a year token: the same period exactly when the same year (so numbers never collide across years).
    assert (period_for("INV-{YYYY}-{SEQ}", a) == period_for("INV-{YYYY}-{SEQ}", b)) == (a.year == b.year)
    assert (period_for("{YY}{SEQ}", a) == period_for("{YY}{SEQ}", b)) == (a.year == b.year)
    # Without one: a single period forever, so the counter never restarts.
    assert period_for("INV-{SEQ:05}", a) == period_for("INV-{SEQ:05}", b) == ""


@pytest.mark.parametrize(
    ("pattern", "issue", "seq", "expected"),
    [
        ("INV-{YYYY}-{SEQ:05}", date(2026, 3, 9), 1, "INV-2026-00001"),
        ("INV-{YYYY}-{SEQ:05}", date(2026, 3, 9), 99999, "INV-2026-99999"),
        ("INV-{YYYY}-{SEQ:05}", date(2026, 3, 9), 123456, "INV-2026-123456"),  # width is a minimum
        ("{SEQ}", date(2026, 3, 9), 42, "42"),
        ("F{YY}{MM}/{SEQ:04}", date(2009, 3, 9), 7, "F0903/0007"),
        ("{YYYY}{SEQ:09}", date(2026, 12, 31), 5, "2026000000005"),
        ("CN-{SEQ:01}", date(2026, 1, 1), 3, "CN-3"),
        ("Y{YYYY}", date(999, 1, 1), 1, "Y0999"),  # format_number does not validate; years are zero-padded
    ],
)
def test_format_number(pattern: str, issue: date, seq: int, expected: str) -> None:
    assert format_number(pattern, issue, seq) == expected


@given(issue=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)), a=st.integers(1, 10**7))
def test_numbers_in_one_period_are_distinct_and_sort_with_the_counter(issue: date, a: int) -> None:
    pattern = "INV-{YYYY}-{SEQ:05}"
    b = a + 1
    first, second = format_number(pattern, issue, a), format_number(pattern, issue, b)
    assert first != second
    if b <= 99999:  # within the padded width, text order is counter order
        assert first < second
