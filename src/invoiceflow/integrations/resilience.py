"""How calls to other systems behave when those systems are slow, overloaded or down.

One `CallGuard` per destination (or source) puts four rules around every attempt:

* a concurrency cap (`asyncio.Semaphore`): at most `max_concurrency` attempts in flight, the partner's own limit;
* a token-bucket rate limit (`rate_limit_per_second`, bursts up to `rate_limit_burst`), taken while holding a slot;
* retries with exponential backoff and full jitter (delay uniform in [0, min(cap, base·2^(n-1))], which spreads
  a crowd of clients best) on timeouts, 429 and 5xx, never sooner than the partner's `Retry-After`. A
  `Retry-After` longer than `max_retry_after_seconds` ends the call at once: the partner asked for a pause the
  job should not sleep through, so the error carries `next_retry_at` for a later run;
* a circuit breaker: after `circuit_failure_threshold` consecutive failed attempts it opens and every call fails
  at once with `ExternalApiError` (`next_retry_at` = end of the cool-down); after `circuit_reset_seconds` one
  probe goes through (half-open); its success closes the circuit, its failure opens it again.

Time and randomness are injected (`Clock`, `random`), so all of it is unit-tested without sleeping. Every
attempt is counted in `external_api_calls_total{service, operation, result}` and timed in
`external_api_call_duration_seconds{service, operation}`.

Guards bind asyncio primitives to the running loop, so a `LimiterRegistry` keeps one guard per key per event
loop; jobs in one process share a destination's limits by sharing the registry.
"""

from __future__ import annotations

import asyncio
import math
import random as _random
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Generic, Literal, Protocol, TypeVar

from invoiceflow.core import metrics
from invoiceflow.integrations.connectors.base import ConnectorOptions, ExternalApiError

T = TypeVar("T")
CircuitState = Literal["closed", "open", "half_open"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> datetime:
        """Timezone-aware UTC wall time (for `next_retry_at` and HTTP-date `Retry-After`)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    """Attempts in all, the first included (1 = no retry)."""
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_seconds < 0 or self.max_delay_seconds < 0 or self.max_retry_after_seconds < 0:
            raise ValueError("retry delays must not be negative")

    def backoff(self, retry: int, random: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, base · 2^(retry-1))] for the `retry`-th retry (1-based)."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * math.pow(2, max(0, retry - 1)))
        return random() * ceiling


@dataclass(frozen=True, slots=True)
class ResilienceSettings:
    max_concurrency: int = 4
    rate_limit_per_second: float | None = None
    """None: no rate limit."""
    rate_limit_burst: float | None = None
    """Tokens the bucket holds (default: max(1, rate)): how many calls may start at once after a quiet spell."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    circuit_failure_threshold: int = 5
    circuit_reset_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if self.rate_limit_per_second is not None and self.rate_limit_per_second <= 0:
            raise ValueError("rate_limit_per_second must be positive (or unset)")
        if self.rate_limit_burst is not None and self.rate_limit_burst < 1:
            raise ValueError("rate_limit_burst must be at least 1")
        if self.circuit_failure_threshold < 1:
            raise ValueError("circuit_failure_threshold must be at least 1")
        if self.circuit_reset_seconds < 0:
            raise ValueError("circuit_reset_seconds must not be negative")


# --------------------------------------------------------------------------------------------- pure parts


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    None when absent or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # an HTTP-date is always GMT; parsedate gives naive for "-0000"
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, (moment - now).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


class TokenBucket:
    """Rate limit by reservation: each caller takes a token now, possibly driving the balance negative, and waits
    until its token would have been refilled. Callers are served in arrival order and nobody polls."""

    def __init__(self, rate_per_second: float, burst: float | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = rate_per_second
        self.capacity = burst if burst is not None else max(1.0, rate_per_second)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock.monotonic()

    def reserve(self) -> float:
        """Take one token; the seconds to wait before using it (0 when one was available)."""
        now = self._clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self) -> None:
        wait = self.reserve()
        if wait > 0:
            await self._clock.sleep(wait)


class CircuitBreaker:
    """closed → open after `failure_threshold` consecutive failures → half-open after `reset_seconds` (one probe
    at a time) → closed on the probe's success, open again on its failure."""

    def __init__(self, failure_threshold: int = 5, reset_seconds: float = 30.0, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state: CircuitState = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> CircuitState:
        if self._state == "open" and self._clock.monotonic() >= self._opened_at + self.reset_seconds:
            return "half_open"
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> float | None:
        """None when a call may go ahead (claiming the probe when half-open); else the monotonic time from which
        asking again makes sense."""
        now = self._clock.monotonic()
        if self._state == "open":
            reopen_at = self._opened_at + self.reset_seconds
            if now < reopen_at:
                return reopen_at
            self._state = "half_open"
            self._probing = False
        if self._state == "half_open":
            if self._probing:
                return now + min(1.0, self.reset_seconds)
            self._probing = True
        return None

    def record_success(self) -> None:
        self._state = "closed"
        self._failures = 0
        self._probing = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.failure_threshold:
            self._state = "open"
            self._opened_at = self._clock.monotonic()
        self._probing = False

    def record_neutral(self) -> None:
        """The call ended in a way that says nothing about the partner's health (a bug, a cancellation, refused
        credentials): a probe slot it held is released, the state stays."""
        self._probing = False

    def reopen_at(self) -> float | None:
        return self._opened_at + self.reset_seconds if self._state == "open" else None


# --------------------------------------------------------------------------------------------- the guard


class RetryableFailure(Exception):
    """Raised by an attempt for what retrying may fix: a timeout, a dropped connection, 429, 5xx."""

    def __init__(self, reason: str, *, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Attempted(Generic[T]):
    value: T
    attempts: int


class CallGuard:
    """Concurrency cap, rate limit, retries and circuit breaker around the calls to one partner.

    `call()` runs `attempt` until it returns; an attempt signals a transient failure by raising
    `RetryableFailure`, and any other exception passes through untouched after one attempt.
    """

    def __init__(
        self,
        service: str,
        settings: ResilienceSettings | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.service = service
        self.settings = settings or ResilienceSettings()
        self.clock = clock
        self.random = random
        self.semaphore = asyncio.Semaphore(self.settings.max_concurrency)
        self.bucket = (
            TokenBucket(self.settings.rate_limit_per_second, self.settings.rate_limit_burst, clock=clock)
            if self.settings.rate_limit_per_second is not None
            else None
        )
        self.breaker = CircuitBreaker(
            self.settings.circuit_failure_threshold, self.settings.circuit_reset_seconds, clock=clock
        )

    def _wall(self, monotonic_at: float) -> datetime:
        return self.clock.now() + timedelta(seconds=max(0.0, monotonic_at - self.clock.monotonic()))

    def _count(self, operation: str, result: str, duration: float | None) -> None:
        metrics.external_api_calls_total.labels(self.service, operation, result).inc()
        if duration is not None:
            metrics.external_api_call_duration_seconds.labels(self.service, operation).observe(duration)

    async def call(
        self,
        operation: str,
        endpoint: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        result_label: Callable[[T], str] | None = None,
    ) -> Attempted[T]:
        policy = self.settings.retry
        attempts = 0
        last: RetryableFailure | None = None
        while True:
            retry_at = self.breaker.allow()
            if retry_at is not None:
                self._count(operation, "circuit_open", None)
                raise ExternalApiError(
                    f"{self.service} {operation}: the circuit is open after repeated failures"
                    + (f" (last: {last.reason})" if last else ""),
                    api_endpoint=endpoint,
                    upstream_status=last.status_code if last else None,
                    retry_count=max(0, attempts - 1),
                    next_retry_at=self._wall(retry_at),
                )
            attempts += 1
            async with self.semaphore:
                if self.bucket is not None:
                    await self.bucket.acquire()
                started = self.clock.monotonic()
                try:
                    value = await attempt()
                except RetryableFailure as failure:
                    self._count(operation, "failed", self.clock.monotonic() - started)
                    self.breaker.record_failure()
                    last = failure
                except BaseException:
                    self._count(operation, "error", self.clock.monotonic() - started)
                    self.breaker.record_neutral()
                    raise
                else:
                    label = result_label(value) if result_label is not None else "ok"
                    self._count(operation, label, self.clock.monotonic() - started)
                    self.breaker.record_success()
                    return Attempted(value, attempts)
            delay = policy.backoff(attempts, self.random)
            if last.retry_after is not None:
                if last.retry_after > policy.max_retry_after_seconds:
                    raise ExternalApiError(
                        f"{self.service} {operation}: {last.reason}; the partner asks to wait "
                        f"{last.retry_after:.0f} s, more than the {policy.max_retry_after_seconds:.0f} s allowed",
                        api_endpoint=endpoint,
                        upstream_status=last.status_code,
                        retry_count=attempts - 1,
                        next_retry_at=self.clock.now() + timedelta(seconds=last.retry_after),
                    )
                delay = max(delay, last.retry_after)
            if attempts >= policy.max_attempts:
                reopen = self.breaker.reopen_at()
                next_at = self._wall(reopen) if reopen is not None else self.clock.now() + timedelta(seconds=delay)
                raise ExternalApiError(
                    f"{self.service} {operation}: {last.reason}; gave up after {attempts} attempts",
                    api_endpoint=endpoint,
                    upstream_status=last.status_code,
                    retry_count=attempts - 1,
                    next_retry_at=next_at,
                )
            if self.breaker.state == "open":
                continue  # fail now with the circuit's own next_retry_at instead of sleeping first
            await self.clock.sleep(delay)


class LimiterRegistry:
    """One `CallGuard` per key and event loop: concurrent jobs pushing to the same partner (same key) share its
    concurrency cap, rate limit and circuit. Keep one registry per process."""

    def __init__(self) -> None:
        self._guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, CallGuard]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, key: Hashable, factory: Callable[[], CallGuard]) -> CallGuard:
        loop = asyncio.get_running_loop()
        guards = self._guards.setdefault(loop, {})
        guard = guards.get(key)
        if guard is None:
            guard = guards[key] = factory()
        return guard


def settings_from(options: ConnectorOptions) -> ResilienceSettings:
    """The resilience part of a connector's settings."""
    return ResilienceSettings(
        max_concurrency=options.max_concurrency,
        rate_limit_per_second=options.rate_limit_per_second,
        rate_limit_burst=options.rate_limit_burst,
        retry=RetryPolicy(
            max_attempts=options.max_attempts,
            base_delay_seconds=options.retry_base_delay_seconds,
            max_delay_seconds=options.retry_max_delay_seconds,
            max_retry_after_seconds=options.max_retry_after_seconds,
        ),
        circuit_failure_threshold=options.circuit_failure_threshold,
        circuit_reset_seconds=options.circuit_reset_seconds,
    )
