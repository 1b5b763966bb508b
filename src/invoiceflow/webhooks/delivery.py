"""Sending deliveries: the retry schedule, one HTTP attempt, and the two calls a scheduler makes.

A workflow (or any scheduler) drives the timing; this module only does one attempt at a time and says
when the next one is due:

- `due_deliveries(db, now, limit)`: ids of the deliveries whose next attempt is due.
- `attempt_delivery(db, delivery_id, now=...)`: claims the delivery, POSTs it once, records the outcome
  and returns the new state (`status`, `next_attempt_at`): sleep until then and call again, until the
  status is `succeeded` or `dead`. Calling it when the delivery is not due, already done or being
  attempted elsewhere sends nothing and returns the current state, so a step that runs twice is harmless.

No database transaction is open while the HTTP request runs: the claim and the outcome are two short
transactions. The claim pushes `next_attempt_at` forward by a lease, so a crashed attempt becomes due
again by itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.db import Database
from invoiceflow.core.models import DomainEvent
from invoiceflow.webhooks.guard import HostUnresolved, UrlRefused, parse_url, resolve
from invoiceflow.webhooks.models import WebhookDelivery, WebhookEndpoint
from invoiceflow.webhooks.signing import signed_headers

log = logging.getLogger("invoiceflow.webhooks")

# --- the retry schedule (pure) ----------------------------------------------------------------------

# Waits after the 1st, 2nd, ... failed attempt: 27 h 42.5 min in all (10 attempts), so a receiver that is
# down for a whole day still gets the event. When the attempt after the last wait fails too, it is dead.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# Each wait is stretched or shrunk by up to 10 %, so that deliveries failed together (a receiver outage)
# do not all come back in the same second. Even all shrunk, the schedule spans more than 24 hours.
JITTER = 0.1
_random = random.SystemRandom()


def retry_delay(failed_attempts: int, *, jitter: float = 0.0) -> timedelta | None:
    """The wait after `failed_attempts` failed attempts (1 = the first), or None: give up.

    `jitter` in [-1, 1] scales the wait by up to ±JITTER.
    """
    if failed_attempts < 1:
        raise ValueError("failed_attempts starts at 1")
    if failed_attempts > len(RETRY_DELAYS):
        return None
    factor = 1 + JITTER * max(-1.0, min(1.0, jitter))
    return RETRY_DELAYS[failed_attempts - 1] * factor


def random_jitter() -> float:
    return _random.uniform(-1.0, 1.0)


# --- one HTTP attempt ---------------------------------------------------------------------------------

CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 10.0
# A receiver that trickles its answer byte by byte stays under the read timeout forever: cap the whole.
TOTAL_TIMEOUT_SECONDS = 30.0
RESPONSE_EXCERPT_BYTES = 2000
USER_AGENT = "invoiceflow-webhooks/1"


@dataclass(frozen=True)
class AttemptOutcome:
    succeeded: bool
    status_code: int | None
    response_excerpt: str | None
    error: str | None
    duration_ms: int


def event_body(event: DomainEvent) -> bytes:
    """The delivered JSON: what receivers parse, and exactly the bytes that are signed."""
    return orjson.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "created_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
            "organization_id": str(event.organization_id),
            "data": event.payload,
        }
    )


def _http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
        follow_redirects=False,
        # Proxies from the environment would resolve the name themselves, past the address check.
        trust_env=False,
    )


async def post_signed(
    raw_url: str,
    *,
    headers: dict[str, str],
    body: bytes,
    allow_private: bool,
    client: httpx.AsyncClient | None = None,
) -> AttemptOutcome:
    """POST `body` once to the address `raw_url` resolves to, if that address is allowed. 2xx = success;
    redirects are not followed (a 3xx is a failure: the receiver must give its final URL)."""
    started = time.perf_counter()

    def outcome(**kw: Any) -> AttemptOutcome:
        return AttemptOutcome(duration_ms=int((time.perf_counter() - started) * 1000), **kw)

    try:
        target = await resolve(parse_url(raw_url, allow_private=allow_private), allow_private=allow_private)
    except (UrlRefused, HostUnresolved) as exc:
        return outcome(succeeded=False, status_code=None, response_excerpt=None, error=str(exc)[:500])
    url = target.url
    request_url = url.copy_with(host=str(target.address))
    request_headers = {
        **headers,
        "User-Agent": USER_AGENT,
        "Host": url.netloc.decode("ascii"),
    }
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    own_client = client is None
    http = client or _http_client()
    try:
        async with asyncio.timeout(TOTAL_TIMEOUT_SECONDS):
            async with http.stream(
                "POST", request_url, content=body, headers=request_headers, extensions=extensions
            ) as response:
                excerpt = bytearray()
                async for chunk in response.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
                        break
        answer = bytes(excerpt[:RESPONSE_EXCERPT_BYTES]).decode("utf-8", errors="replace")
        ok = 200 <= response.status_code < 300
        return outcome(
            succeeded=ok,
            status_code=response.status_code,
            response_excerpt=answer or None,
            error=None if ok else f"HTTP {response.status_code}",
        )
    except TimeoutError:
        return outcome(succeeded=False, status_code=None, response_excerpt=None, error="timed out")
    except (httpx.HTTPError, OSError) as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return outcome(succeeded=False, status_code=None, response_excerpt=None, error=reason[:500])
    finally:
        if own_client:
            await http.aclose()


# --- the scheduler's calls ----------------------------------------------------------------------------

# How long a claimed attempt keeps others away; longer than an attempt can take.
CLAIM_LEASE = timedelta(minutes=5)
_ATTEMPTABLE = ("pending", "failed")


@dataclass(frozen=True)
class DeliveryState:
    id: uuid.UUID
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    attempted: bool  # whether this call made an attempt

    @classmethod
    def of(cls, row: WebhookDelivery, *, attempted: bool) -> DeliveryState:
        return cls(
            id=row.id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            attempted=attempted,
        )


@asynccontextmanager
async def _write(db: Database) -> AsyncIterator[AsyncSession]:
    """A short write transaction, queued behind the process's other SQLite writers."""
    async with db.locked_write_session() as session:
        yield session
        await session.commit()


async def due_deliveries(db: Database, now: datetime, limit: int = 100) -> list[uuid.UUID]:
    """Deliveries to attempt now, the longest-waiting first (endpoints disabled or deleted excluded)."""
    stmt = (
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            # Spelled as in the partial index's predicate: with bound parameters instead of these
            # constants, neither SQLite nor a generic PostgreSQL plan could use that index.
            text("webhook_deliveries.status IN ('pending', 'failed')"),
            WebhookDelivery.next_attempt_at <= now,
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.deleted_at.is_(None),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    )
    async with db.read_sessions() as session:
        return list((await session.execute(stmt)).scalars())


async def attempt_delivery(
    db: Database,
    delivery_id: uuid.UUID,
    *,
    now: datetime,
    allow_private_networks: bool = False,
    client: httpx.AsyncClient | None = None,
    jitter: Callable[[], float] = random_jitter,
) -> DeliveryState:
    """One attempt of one delivery, if it is due at `now`; see the module docstring.

    `now` is the scheduler's clock: it decides what is due and when the next attempt is. The signature's
    timestamp is this machine's real clock, which the receiver compares with its own.
    """
    async with _write(db) as session:
        claimed = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status.in_(_ATTEMPTABLE),
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False)
        )
        row = await _load(session, delivery_id)
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return DeliveryState.of(row, attempted=False)
        endpoint = await session.get(WebhookEndpoint, row.endpoint_id)
        event = (await session.execute(select(DomainEvent).where(DomainEvent.id == row.event_id))).scalar_one()
        assert endpoint is not None
        if endpoint.deleted_at is not None or not endpoint.enabled:
            row.status = "dead"
            row.next_attempt_at = None
            row.last_error = "endpoint deleted" if endpoint.deleted_at is not None else "endpoint disabled"
            return DeliveryState.of(row, attempted=False)
        url, secret = endpoint.url, endpoint.secret
        body = event_body(event)
        event_id, event_type = str(event.id), event.type

    headers = signed_headers(
        secret=secret, event_id=event_id, event_type=event_type, timestamp=int(time.time()), body=body
    )
    result = await post_signed(url, headers=headers, body=body, allow_private=allow_private_networks, client=client)
    if not result.succeeded:
        log.info("webhook delivery %s to %s failed: %s", delivery_id, url, result.error)

    async with _write(db) as session:
        row = await _load(session, delivery_id)
        row.attempts += 1
        row.last_status_code = result.status_code
        row.last_response = result.response_excerpt
        row.last_error = result.error
        row.last_duration_ms = result.duration_ms
        if result.succeeded:
            row.status = "succeeded"
            row.delivered_at = now
            row.next_attempt_at = None
        else:
            delay = retry_delay(row.attempts, jitter=jitter())
            row.status = "failed" if delay is not None else "dead"
            row.next_attempt_at = now + delay if delay is not None else None
        return DeliveryState.of(row, attempted=True)


async def _load(session: AsyncSession, delivery_id: uuid.UUID) -> WebhookDelivery:
    stmt = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).execution_options(populate_existing=True)
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise LookupError(f"webhook delivery {delivery_id} does not exist")
    return row
