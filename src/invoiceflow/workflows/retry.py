"""Retry policies whose attempts and waits are durable: every attempt is a step of its own, and the wait
between two attempts is `DBOS.sleep_async`, which survives a restart at its recorded wake-up time.

DBOS's built-in step retries keep attempts in memory (one row per step, no attempt count) and restart
their backoff after a crash; see ADR 0008.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from dbos import DBOS

from invoiceflow.core import metrics
from invoiceflow.core.errors import AppError

log = logging.getLogger("invoiceflow.workflows")
T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")
# Set from `INVOICEFLOW_WORKFLOW_RETRY_DELAY_SCALE` by the process that runs workflows.
delay_scale = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int
    first_delay: float
    factor: float = 2.0
    max_delay: float = 3600.0

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after the `failed_attempts`-th failure."""
        return min(self.max_delay, self.first_delay * self.factor ** (failed_attempts - 1))


class StepFailed(Exception):
    """A step's error as the workflow records it. Positional string arguments only: DBOS pickles step
    errors, and an exception with keyword-only arguments does not unpickle."""

    def __init__(self, code: str, message: str, retryable: str = "yes") -> None:
        super().__init__(code, message, retryable)
        self.code = code
        self.message = message
        self.retryable = retryable == "yes"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def as_step_failure(exc: Exception) -> StepFailed:
    """Domain errors with a 4xx status are not retried: the data must change first."""
    if isinstance(exc, StepFailed):
        return exc
    if isinstance(exc, AppError):
        return StepFailed(exc.code, exc.message, "no" if exc.status_code < 500 else "yes")
    return StepFailed(type(exc).__name__, str(exc)[:500] or type(exc).__name__)


async def with_retries(step: Callable[..., Awaitable[T]], policy: RetryPolicy, *args: Any) -> T:
    """Run `step(*args)` until it succeeds or `policy.attempts` are spent; the last failure is raised,
    which ends the workflow in ERROR (a user can retry it)."""
    failed = 0
    while True:
        try:
            return await step(*args)
        except StepFailed as exc:
            failed += 1
            if not exc.retryable or failed >= policy.attempts:
                raise
            delay = policy.delay(failed) * delay_scale
            name = getattr(step, "__name__", "step")
            log.warning(
                "%s failed (attempt %s of %s): %s; next attempt in %.0f s", name, failed, policy.attempts, exc, delay
            )
            await DBOS.sleep_async(delay)


def durable_step(workflow: str, name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """A DBOS step named `name` (names are persisted: never rename one with runs pending) whose failures are
    recorded as `StepFailed` and whose duration is measured under `workflow`."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        async def body(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - recorded as the step's error, in a form that unpickles
                raise as_step_failure(exc) from None
            finally:
                metrics.workflow_step_duration_seconds.labels(workflow, name).observe(time.perf_counter() - started)

        body.__name__ = body.__qualname__ = name
        return DBOS.step(name=name)(body)

    return wrap
