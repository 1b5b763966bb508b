"""One round of progress on everything the event log owes the outside world: `dispatch_once`.

A scheduler (a DBOS scheduled workflow, every few seconds) calls `dispatch_once(db, now=..., publisher=...,
allow_private_networks=...)`. One round:

1. fans events out to webhook deliveries (`fanout.fan_out_pending`, one batch of at most `limit`);
2. attempts the webhook deliveries that are due (`delivery.attempt_delivery`, a few at a time), and, at
   the same time,
3. tracks the events owed to the broker and publishes the due ones, when a publisher is configured.

Every step is safe to run twice or concurrently: a round that crashes halfway is simply followed by the
next one. The result counts what the round did.

Broker publications. The broker gets the same guarantee as a webhook endpoint, by the same means:

- Tracking (`track_publications`). `broker_publications` holds one row per event owed to the broker,
  keyed by the event id. A run inserts a pending row for every event above the broker's floor that has
  none yet (an anti-join on the key, `ON CONFLICT DO NOTHING`), oldest first, and moves the floor with
  the fan-out's rule (`fanout.advance_floors`; the floor lives in the one-row
  `broker_publication_floor`): an event whose transaction commits after a later one is found on a later
  run, never passed over. Runs are serialised by their own advisory lock on PostgreSQL. The broker is
  treated like one more endpoint, always subscribed to everything but `WebhookTest`: its first floor is
  the last event recorded before the migration that added it, and while no publisher is configured it is
  "disabled": its floor moves on and the events of that time are not owed (turning the broker on does
  not replay the history).
- Publishing (`publish_pending`). A run claims the due rows (`pending`, or `failed` whose backoff is
  over) in event order, pushing their `next_attempt_at` forward by a lease (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL, the single writer on SQLite), so concurrent runs never claim the same row and a crashed run's
  rows come back by themselves after the lease. It publishes them one by one in `seq` order, with no
  database transaction open, and marks a row `published` only after the broker confirmed it (publisher
  confirms, `rabbitmq.EventPublisher.publish`). The first failure ends the run's publishing: that event
  becomes `failed` with the error and a backoff (the webhook retry delays, repeating the longest; the
  broker is never given up on), the publisher is closed so the next run reconnects and re-declares the
  exchange, and the rest of the claimed rows are released untouched for the next run. During an outage a
  run thus costs one failed attempt, not one per event.

Hence: every event recorded while a publisher is configured is published at least once; a crash between
the broker's confirm and the database write publishes it again, so consumers deduplicate on
`message_id` (= event id). Within a run events go out in `seq` order; across failures and concurrent
runs the order is not guaranteed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aio_pika.exceptions import AMQPError
from sqlalchemy import exists, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.db import Database
from invoiceflow.core.models import DomainEvent
from invoiceflow.webhooks.delivery import (
    CLAIM_LEASE,
    RETRY_DELAYS,
    _write,
    attempt_delivery,
    due_deliveries,
    random_jitter,
    retry_delay,
)
from invoiceflow.webhooks.fanout import (
    TEST_EVENT_TYPE,
    advance_floors,
    fan_out_pending,
    lock_run,
    oldest_open_transaction,
)
from invoiceflow.webhooks.models import BrokerPublication, BrokerPublicationFloor
from invoiceflow.webhooks.rabbitmq import EventPublisher, PublishFailed

log = logging.getLogger("invoiceflow.webhooks")

# pg_advisory_xact_lock key ("whbroker"): one tracking run at a time per database.
_PG_LOCK_KEY = 0x776862726F6B6572
_FLOOR_ID = 1
# How many webhook deliveries a round attempts at once.
DELIVERY_CONCURRENCY = 8
# What a failed publish raises: `publish` connects first, and connecting raises the transport's errors.
_PUBLISH_ERRORS = (PublishFailed, AMQPError, OSError, TimeoutError)


@dataclass(frozen=True)
class DispatchResult:
    deliveries_created: int = 0
    deliveries_attempted: int = 0
    deliveries_succeeded: int = 0
    publications_created: int = 0
    published: int = 0
    publish_failures: int = 0


# --- broker publications -----------------------------------------------------------------------------


async def _insert_publications(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = module.insert(BrokerPublication).values(rows).on_conflict_do_nothing(index_elements=["event_id"])
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def track_publications(session: AsyncSession, *, enabled: bool, now: datetime, limit: int = 500) -> int:
    """Pending publications for the events above the broker's floor that have none yet, oldest first, at
    most `limit`; with `enabled` false none are created and the floor only moves on. Call it in a write
    transaction and commit. Returns how many it created."""
    await lock_run(session, _PG_LOCK_KEY)
    oldest_open = await oldest_open_transaction(session)
    floor = (
        await session.execute(select(BrokerPublicationFloor.floor_seq).where(BrokerPublicationFloor.id == _FLOOR_ID))
    ).scalar_one_or_none()
    if floor is None:  # an emptied table: the whole log is owed
        session.add(BrokerPublicationFloor(id=_FLOOR_ID, floor_seq=0))
        await session.flush()
        floor = 0

    candidates: list[tuple[uuid.UUID, int, str]] = []
    if enabled:
        no_publication = ~exists().where(BrokerPublication.event_id == DomainEvent.id)
        rows = await session.execute(
            select(DomainEvent.id, DomainEvent.seq, DomainEvent.type)
            .where(DomainEvent.seq > floor, DomainEvent.type != TEST_EVENT_TYPE, no_publication)
            .order_by(DomainEvent.seq)
            .limit(limit)
        )
        candidates = [(event_id, seq, type_) for event_id, seq, type_ in rows.tuples()]
    created = await _insert_publications(
        session,
        [
            {
                "event_id": event_id,
                "seq": seq,
                "event_type": type_,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for event_id, seq, type_ in candidates
        ],
    )
    await advance_floors(
        session,
        floor=BrokerPublicationFloor.floor_seq,
        mark_seq=BrokerPublicationFloor.mark_seq,
        mark_at=BrokerPublicationFloor.mark_at,
        where=[BrokerPublicationFloor.id == _FLOOR_ID],
        complete=len(candidates) < limit,
        oldest_open=oldest_open,
    )
    return created


def publish_retry_delay(failed_attempts: int, *, jitter: float = 0.0) -> timedelta:
    """The wait after `failed_attempts` failed publishes: the webhook schedule, then its longest wait."""
    delay = retry_delay(min(failed_attempts, len(RETRY_DELAYS)), jitter=jitter)
    assert delay is not None
    return delay


async def publish_pending(
    db: Database,
    publisher: EventPublisher,
    *,
    now: datetime,
    limit: int = 100,
    jitter: Callable[[], float] = random_jitter,
) -> tuple[int, int]:
    """Publish the due publications, in event order, until the first failure; see the module docstring.
    Returns (published, failed)."""
    async with _write(db) as session:
        claimed = list(
            (
                await session.execute(
                    select(BrokerPublication.event_id)
                    .where(
                        # Spelled as in the partial index's predicate (see delivery.due_deliveries).
                        text("broker_publications.status IN ('pending', 'failed')"),
                        BrokerPublication.next_attempt_at <= now,
                    )
                    .order_by(BrokerPublication.seq)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not claimed:
            return 0, 0
        await session.execute(
            update(BrokerPublication)
            .where(BrokerPublication.event_id.in_(claimed))
            .values(next_attempt_at=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False)
        )
        events = list(
            (
                await session.execute(select(DomainEvent).where(DomainEvent.id.in_(claimed)).order_by(DomainEvent.seq))
            ).scalars()
        )

    published: list[uuid.UUID] = []
    failure: tuple[uuid.UUID, str] | None = None
    for event in events:
        try:
            await publisher.publish(event)
        except _PUBLISH_ERRORS as exc:
            error = str(exc) if isinstance(exc, PublishFailed) else f"{type(exc).__name__}: {exc}"
            failure = (event.id, error[:500])
            log.warning("publishing event %s to the broker failed: %s", event.id, error)
            with contextlib.suppress(Exception):
                await publisher.close()  # the next run connects afresh and declares the exchange again
            break
        published.append(event.id)

    async with _write(db) as session:
        if published:
            await session.execute(
                update(BrokerPublication)
                .where(BrokerPublication.event_id.in_(published))
                .values(
                    status="published",
                    attempts=BrokerPublication.attempts + 1,
                    published_at=now,
                    next_attempt_at=None,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            )
        if failure is not None:
            failed_id, error = failure
            row = (
                await session.execute(select(BrokerPublication).where(BrokerPublication.event_id == failed_id))
            ).scalar_one()
            row.attempts += 1
            row.status = "failed"
            row.last_error = error
            row.next_attempt_at = now + publish_retry_delay(row.attempts, jitter=jitter())
            # Claimed but not tried: due again at once.
            done = {*published, failed_id}
            untried = [event_id for event_id in claimed if event_id not in done]
            if untried:
                await session.execute(
                    update(BrokerPublication)
                    .where(BrokerPublication.event_id.in_(untried))
                    .values(next_attempt_at=now)
                    .execution_options(synchronize_session=False)
                )
    return len(published), 0 if failure is None else 1


# --- one round ---------------------------------------------------------------------------------------


async def _attempt_due_deliveries(
    db: Database, *, now: datetime, allow_private_networks: bool, limit: int
) -> tuple[int, int]:
    due = await due_deliveries(db, now, limit)
    gate = asyncio.Semaphore(DELIVERY_CONCURRENCY)

    async def attempt(delivery_id: uuid.UUID) -> tuple[bool, bool]:
        async with gate:
            state = await attempt_delivery(db, delivery_id, now=now, allow_private_networks=allow_private_networks)
        return state.attempted, state.attempted and state.status == "succeeded"

    outcomes = await asyncio.gather(*(attempt(delivery_id) for delivery_id in due))
    return sum(a for a, _ in outcomes), sum(s for _, s in outcomes)


async def _broker_round(
    db: Database, *, now: datetime, publisher: EventPublisher | None, limit: int
) -> tuple[int, int, int]:
    async with _write(db) as session:
        created = await track_publications(session, enabled=publisher is not None, now=now, limit=limit)
    if publisher is None:
        return created, 0, 0
    published, failed = await publish_pending(db, publisher, now=now, limit=limit)
    return created, published, failed


async def dispatch_once(
    db: Database,
    *,
    now: datetime,
    publisher: EventPublisher | None,
    allow_private_networks: bool,
    limit: int = 100,
) -> DispatchResult:
    """One round of progress on webhook deliveries and broker publications; see the module docstring.
    `limit` bounds each step (fan-out pairs, delivery attempts, publications tracked and published)."""
    async with _write(db) as session:
        deliveries_created = await fan_out_pending(session, limit=limit, now=now)
    (attempted, succeeded), (publications_created, published, failed) = await asyncio.gather(
        _attempt_due_deliveries(db, now=now, allow_private_networks=allow_private_networks, limit=limit),
        _broker_round(db, now=now, publisher=publisher, limit=limit),
    )
    return DispatchResult(
        deliveries_created=deliveries_created,
        deliveries_attempted=attempted,
        deliveries_succeeded=succeeded,
        publications_created=publications_created,
        published=published,
        publish_failures=failed,
    )
