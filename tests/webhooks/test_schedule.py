"""The retry schedule: pure, and long enough to ride out a receiver that is down for a day."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoiceflow.webhooks.delivery import JITTER, MAX_ATTEMPTS, RETRY_DELAYS, retry_delay


def test_the_schedule_backs_off_and_spans_more_than_24_hours_even_with_the_shortest_jitter() -> None:
    waits = [retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert waits[:5] == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(hours=1),
    ]
    assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(waits))
    shortest = sum((retry_delay(n, jitter=-1.0) or timedelta(0) for n in range(1, MAX_ATTEMPTS)), timedelta(0))
    assert shortest >= timedelta(hours=24)
    assert sum(RETRY_DELAYS, timedelta(0)) == timedelta(hours=27, minutes=42, seconds=30)


def test_after_the_last_attempt_there_is_no_next_one() -> None:
    assert MAX_ATTEMPTS == len(RETRY_DELAYS) + 1 == 10
    assert retry_delay(MAX_ATTEMPTS - 1) == timedelta(hours=12)
    assert retry_delay(MAX_ATTEMPTS) is None
    assert retry_delay(100) is None
    with pytest.raises(ValueError):
        retry_delay(0)


@given(st.integers(min_value=1, max_value=MAX_ATTEMPTS - 1), st.floats(min_value=-5, max_value=5))
def test_jitter_stays_within_ten_percent(failed: int, jitter: float) -> None:
    base = RETRY_DELAYS[failed - 1]
    wait = retry_delay(failed, jitter=jitter)
    assert wait is not None
    assert base * (1 - JITTER) <= wait <= base * (1 + JITTER)
