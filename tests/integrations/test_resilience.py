"""The resilience rules as pure logic: a fake clock whose sleep only moves time, so nothing here waits for real."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from invoiceflow.integrations.connectors.base import ExternalApiError
from invoiceflow.integrations.resilience import (
    CallGuard,
    CircuitBreaker,
    LimiterRegistry,
    ResilienceSettings,
    RetryableFailure,
    RetryPolicy,
    TokenBucket,
    parse_retry_after,
)

pytestmark = pytest.mark.anyio

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return START + timedelta(seconds=self.t - 100.0)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds


def guard(clock: FakeClock, *, max_attempts: int = 4, **settings: Any) -> CallGuard:
    """Jitter pinned to its ceiling (random() = 1.0), so the delays are 0.5, 1, 2, 4 s."""
    retry = RetryPolicy(
        max_attempts=max_attempts, base_delay_seconds=0.5, max_delay_seconds=4.0, max_retry_after_seconds=60.0
    )
    return CallGuard("test", ResilienceSettings(retry=retry, **settings), clock=clock, random=lambda: 1.0)


class Script:
    """An attempt function that fails with the scripted failures, then answers "ok"."""

    def __init__(self, *failures: RetryableFailure | Exception) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def metric(result: str, operation: str = "push", service: str = "test") -> float:
    labels = {"service": service, "operation": operation, "result": result}
    return REGISTRY.get_sample_value("external_api_calls_total", labels) or 0.0


# --------------------------------------------------------------------------------------------- pure parts


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay_seconds=0.5, max_delay_seconds=5.0)
    assert [policy.backoff(n, lambda: 1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.backoff(3, lambda: 0.0) == 0.0
    assert policy.backoff(3, lambda: 0.25) == 0.5


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("3", now=START) == 3.0
    assert parse_retry_after(" 1.5 ", now=START) == 1.5
    assert parse_retry_after(format_datetime(START + timedelta(seconds=90), usegmt=True), now=START) == 90.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=START) == 0.0  # in the past
    for unreadable in (None, "", "soon", "-5", "nan", "inf"):
        assert parse_retry_after(unreadable, now=START) is None


def test_token_bucket_serves_a_burst_then_spaces_calls_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=2, clock=clock)
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.1, 0.2])
    clock.advance(1.0)  # refills to the burst, no further
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


async def test_token_bucket_acquire_sleeps_for_its_turn() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, burst=1, clock=clock)
    for _ in range(3):
        await bucket.acquire()
    assert clock.sleeps == pytest.approx([0.25, 0.25])


def test_circuit_breaker_opens_half_opens_and_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=10, clock=clock)
    for _ in range(2):
        assert breaker.allow() is None
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_success()  # only consecutive failures count
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == "open"
    assert breaker.allow() == 110.0
    clock.advance(10)
    assert breaker.state == "half_open"
    assert breaker.allow() is None  # the probe
    assert breaker.allow() is not None  # one probe at a time
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allow() is None


def test_a_failed_probe_opens_the_circuit_again() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    assert breaker.allow() is None
    breaker.record_failure()
    assert breaker.state == "open"
    assert breaker.allow() == clock.t + 5


def test_a_neutral_end_releases_the_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_seconds=5, clock=clock)
    breaker.record_failure()
    clock.advance(5)
    assert breaker.allow() is None
    breaker.record_neutral()
    assert breaker.allow() is None


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        ResilienceSettings(max_concurrency=0)
    with pytest.raises(ValueError):
        ResilienceSettings(rate_limit_per_second=0)


# --------------------------------------------------------------------------------------------- the guard


async def test_transient_failures_are_retried_with_backoff() -> None:
    clock = FakeClock()
    attempt = Script(RetryableFailure("503", status_code=503), RetryableFailure("timeout"))
    before = metric("failed"), metric("ok")
    result = await guard(clock).call("push", "http://partner/invoices", attempt)
    assert (result.value, result.attempts, attempt.calls) == ("ok", 3, 3)
    assert clock.sleeps == [0.5, 1.0]
    assert (metric("failed"), metric("ok")) == (before[0] + 2, before[1] + 1)


async def test_giving_up_reports_retry_count_and_next_retry_at() -> None:
    clock = FakeClock()
    attempt = Script(*[RetryableFailure("HTTP 503", status_code=503) for _ in range(10)])
    with pytest.raises(ExternalApiError) as caught:
        await guard(clock, max_attempts=3).call("push", "http://partner/invoices", attempt)
    error = caught.value
    assert attempt.calls == 3
    assert clock.sleeps == [0.5, 1.0]
    assert (error.status_code, error.code) == (503, "EXTERNAL_API_ERROR")
    assert (error.retry_count, error.upstream_status, error.retryable) == (2, 503, True)
    assert error.next_retry_at == clock.now() + timedelta(seconds=2.0)  # the next backoff
    assert error.details == {
        "api_endpoint": "http://partner/invoices",
        "status_code": 503,
        "retry_count": 2,
        "next_retry_at": "2026-03-01T12:00:03.500Z",
    }
    assert "gave up after 3 attempts" in error.message


async def test_retry_after_is_honoured_and_an_excessive_one_ends_the_call() -> None:
    clock = FakeClock()
    attempt = Script(RetryableFailure("429", status_code=429, retry_after=7.0))
    result = await guard(clock).call("push", "e", attempt)
    assert (result.attempts, clock.sleeps) == (2, [7.0])  # more than the 0.5 s backoff

    short = Script(RetryableFailure("429", status_code=429, retry_after=0.0))
    await guard(clock).call("push", "e", short)
    assert clock.sleeps[-1] == 0.5  # never sooner than the backoff

    clock = FakeClock()
    too_long = Script(RetryableFailure("429", status_code=429, retry_after=3600.0))
    with pytest.raises(ExternalApiError) as caught:
        await guard(clock).call("push", "e", too_long)
    assert (too_long.calls, clock.sleeps) == (1, [])
    assert (caught.value.retry_count, caught.value.upstream_status) == (0, 429)
    assert caught.value.next_retry_at == clock.now() + timedelta(hours=1)


async def test_the_circuit_opens_fails_fast_and_recovers_through_a_probe() -> None:
    clock = FakeClock()
    g = guard(clock, max_attempts=5, circuit_failure_threshold=3, circuit_reset_seconds=30.0)
    failing = Script(*[RetryableFailure("HTTP 502", status_code=502) for _ in range(10)])
    with pytest.raises(ExternalApiError) as caught:
        await g.call("push", "e", failing)
    assert failing.calls == 3  # the circuit opened on the third failure: no fourth attempt, no last sleep
    assert clock.sleeps == [0.5, 1.0]
    assert "circuit is open" in caught.value.message
    assert caught.value.retry_count == 2
    assert caught.value.next_retry_at == clock.now() + timedelta(seconds=30)

    before = metric("circuit_open")
    untouched = Script()
    with pytest.raises(ExternalApiError) as fast:
        await g.call("push", "e", untouched)
    assert untouched.calls == 0
    assert (fast.value.retry_count, fast.value.next_retry_at) == (0, clock.now() + timedelta(seconds=30))
    assert metric("circuit_open") == before + 1

    clock.advance(30)
    assert g.breaker.state == "half_open"
    probe = Script()
    assert (await g.call("push", "e", probe)).value == "ok"
    assert g.breaker.state == "closed"


async def test_other_exceptions_pass_through_after_one_attempt() -> None:
    clock = FakeClock()
    g = guard(clock, circuit_failure_threshold=1)
    refused = ExternalApiError("refused", api_endpoint="e", upstream_status=401, retryable=False)
    attempt = Script(refused)
    with pytest.raises(ExternalApiError) as caught:
        await g.call("push", "e", attempt)
    assert caught.value is refused
    assert (attempt.calls, clock.sleeps, g.breaker.state) == (1, [], "closed")


async def test_result_labels_are_counted() -> None:
    before = metric("rejected")
    result = await guard(FakeClock()).call("push", "e", Script(), result_label=lambda value: "rejected")
    assert result.value == "ok"
    assert metric("rejected") == before + 1


async def test_the_concurrency_cap_holds() -> None:
    g = CallGuard("test", ResilienceSettings(max_concurrency=2))
    running = 0
    peak = 0

    async def attempt() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    await asyncio.gather(*(g.call("push", "e", attempt) for _ in range(8)))
    assert peak == 2


async def test_the_rate_limit_applies_to_each_attempt() -> None:
    clock = FakeClock()
    g = guard(clock, rate_limit_per_second=2.0, rate_limit_burst=1.0)
    for _ in range(3):
        await g.call("push", "e", Script())
    assert clock.sleeps == pytest.approx([0.5, 0.5])


async def test_the_registry_shares_one_guard_per_key() -> None:
    registry = LimiterRegistry()
    first = registry.get("partner-a", lambda: CallGuard("a"))
    assert registry.get("partner-a", lambda: CallGuard("other")) is first
    assert registry.get("partner-b", lambda: CallGuard("b")) is not first
