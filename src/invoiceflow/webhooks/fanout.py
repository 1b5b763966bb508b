"""Fan-out: turning events of the log into pending deliveries, without missing one.

The choice. Core records events and may not import this package, so deliveries cannot be written by
`record_event` itself. Instead the dispatcher (`fan_out_pending`, run by the scheduler) tracks what is
*undelivered* rather than keeping a high-water mark: for every enabled endpoint it selects the matching
events of the endpoint's organisation that have no delivery row for that endpoint yet (an anti-join on
the unique (endpoint_id, event_id) key) and inserts them, `ON CONFLICT DO NOTHING`. An event whose
transaction commits after a later event (`seq` is allocation order, not commit order) is simply not
visible on one run and found, still without a delivery, on the next one. Runs are serialised (an
advisory lock on PostgreSQL, the single writer on SQLite) and the unique key makes a second or
concurrent run insert nothing twice. Code that records an event in a layer above this one can also call
`fan_out(session, event)` in the same transaction; the dispatcher then finds nothing left to do for it.

Keeping the anti-join cheap. Scanning every event since an endpoint was created on every run would grow
without end, so each endpoint has a floor, `fanout_floor_seq`: every event at or below it has been
considered. The floor only moves past sequence numbers that can no longer appear:

- SQLite has one writer at a time. The dispatcher's write transaction holds that lock, so every event
  row that will ever exist with a seq up to the current maximum is already committed (or rolled back):
  after a complete run the floor moves to the maximum seq.
- PostgreSQL: each run first notes the current maximum seq M, then the time T (`clock_timestamp()`,
  read after M) as the endpoint's mark. An event with a seq below M that is not visible yet belongs to
  a transaction that took its seq before M was read, so it was open at T. A later run moves the floor to
  M once no client transaction that started before T is still open (`pg_stat_activity.xact_start`): by
  then every such event is committed and visible. The check relies on the application's sessions being
  visible in `pg_stat_activity`, true when they use the same database role as the dispatcher (or it has
  `pg_read_all_stats`). A transaction left open for a long time only holds the floor back (runs get
  slower); it never makes an event be skipped.

A floor moves only after a run that handled every pending pair (fewer than `limit`), so an event left
for the next batch is never passed over.

The floor rule is generic (`lock_run`, `oldest_open_transaction`, `advance_floors`, over any table with a
floor, a mark seq and a mark time): the broker's publication tracking (`dispatch.py`) uses it too.

What an endpoint receives: the events recorded after it was created (its first floor is the maximum seq
at creation) that match its event types; a disabled endpoint receives nothing while disabled (its floor
keeps moving). A change of event types applies to events not yet fanned out. `WebhookTest` events are
delivered only to the endpoint that asked for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, cast, exists, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from invoiceflow.core.db import utcnow
from invoiceflow.core.models import DomainEvent
from invoiceflow.webhooks.models import WebhookDelivery, WebhookEndpoint

TEST_EVENT_TYPE = "WebhookTest"
# pg_advisory_xact_lock key ("whfanout"): one dispatcher run at a time per database.
_PG_LOCK_KEY = 0x776866616E6F7574


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def subscribes(event_types: Sequence[str], event_type: str) -> bool:
    return event_type != TEST_EVENT_TYPE and (not event_types or event_type in event_types)


def _subscribed_sql(dialect: str) -> ColumnElement[bool]:
    types = WebhookEndpoint.event_types
    if dialect == "postgresql":
        # jsonb `?` is true when the array holds the string.
        contains: ColumnElement[bool] = cast(types, JSONB).has_key(DomainEvent.type)
    else:
        values = func.json_each(types).table_valued("value")
        contains = DomainEvent.type.in_(select(values.c.value))
    return or_(func.json_array_length(types) == 0, contains)


async def _insert_pending(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    module: Any = postgresql if _dialect(session) == "postgresql" else sqlite
    stmt = (
        module.insert(WebhookDelivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[WebhookDelivery.endpoint_id, WebhookDelivery.event_id])
    )
    result = await session.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


def _pending_row(
    *, endpoint_id: uuid.UUID, event_id: uuid.UUID, organization_id: uuid.UUID, event_type: str, now: datetime
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "organization_id": organization_id,
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "event_type": event_type,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def fan_out(session: AsyncSession, event: DomainEvent, *, now: datetime | None = None) -> int:
    """Pending deliveries of a flushed `event` to its organisation's matching enabled endpoints, in the
    caller's transaction. Returns how many were created (an existing one is left alone)."""
    now = now or utcnow()
    endpoints = (
        await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
                WebhookEndpoint.organization_id == event.organization_id,
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.deleted_at.is_(None),
            )
        )
    ).all()
    rows = [
        _pending_row(
            endpoint_id=endpoint_id,
            event_id=event.id,
            organization_id=event.organization_id,
            event_type=event.type,
            now=now,
        )
        for endpoint_id, event_types in endpoints
        if subscribes(event_types or [], event.type)
    ]
    return await _insert_pending(session, rows)


async def current_max_seq(session: AsyncSession) -> int:
    return int((await session.execute(select(func.coalesce(func.max(DomainEvent.seq), 0)))).scalar_one())


async def oldest_open_transaction(session: AsyncSession) -> datetime | None:
    """PostgreSQL: when the oldest other client transaction still open began (None: none is open).

    Read it before the candidates: the settle rule of `advance_floors` relies on it."""
    if _dialect(session) != "postgresql":
        return None
    started: datetime | None = (
        await session.execute(
            text(
                "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND xact_start IS NOT NULL"
            )
        )
    ).scalar_one()
    return started


async def lock_run(session: AsyncSession, key: int) -> None:
    """Serialise runs of one kind: a transaction-scoped advisory lock on PostgreSQL; on SQLite the write
    transaction already is the only writer."""
    if _dialect(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def advance_floors(
    session: AsyncSession,
    *,
    floor: InstrumentedAttribute[int],
    mark_seq: InstrumentedAttribute[int | None],
    mark_at: InstrumentedAttribute[datetime | None],
    where: Sequence[ColumnElement[bool]] = (),
    complete: bool,
    oldest_open: datetime | None,
) -> None:
    """Move the floors of the rows matching `where` (columns `floor`, `mark_seq`, `mark_at` of one table)
    past the sequence numbers that can no longer appear; see the module docstring. Call it at the end of
    a run, in its transaction, with `complete` = the run handled every pending candidate and
    `oldest_open` as read by `oldest_open_transaction` before the candidates were read."""
    model = floor.class_
    if _dialect(session) == "postgresql":
        if complete:
            settled: list[ColumnElement[bool]] = [*where, mark_at.is_not(None)]
            if oldest_open is not None:
                settled.append(mark_at < oldest_open)
            await session.execute(
                update(model)
                .where(*settled)
                .values({floor: func.greatest(floor, mark_seq), mark_seq: None, mark_at: None})
                .execution_options(synchronize_session=False)
            )
        mark = await current_max_seq(session)
        # clock_timestamp(), not now(): the time of this statement, after `mark` was read.
        await session.execute(
            update(model)
            .where(*where, mark_at.is_(None), floor < mark)
            .values({mark_seq: mark, mark_at: func.clock_timestamp()})
            .execution_options(synchronize_session=False)
        )
    elif complete:
        # One writer: this transaction holds the lock, every seq up to the maximum is settled.
        highest = select(func.coalesce(func.max(DomainEvent.seq), 0)).scalar_subquery()
        await session.execute(
            update(model)
            .where(*where, floor < highest)
            .values({floor: highest})
            .execution_options(synchronize_session=False)
        )


async def fan_out_pending(session: AsyncSession, *, limit: int = 500, now: datetime | None = None) -> int:
    """Pending deliveries for every (enabled endpoint, matching event) pair that has none yet, oldest
    events first, at most `limit`. Call it in a write transaction and commit; call again while it
    returns `limit`. Returns how many deliveries it created."""
    now = now or utcnow()
    dialect = _dialect(session)
    await lock_run(session, _PG_LOCK_KEY)
    oldest_open = await oldest_open_transaction(session)

    no_delivery = ~exists().where(
        WebhookDelivery.endpoint_id == WebhookEndpoint.id, WebhookDelivery.event_id == DomainEvent.id
    )
    candidates = (
        await session.execute(
            select(WebhookEndpoint.id, DomainEvent.id, DomainEvent.organization_id, DomainEvent.type)
            .join(
                DomainEvent,
                and_(
                    DomainEvent.organization_id == WebhookEndpoint.organization_id,
                    DomainEvent.seq > WebhookEndpoint.fanout_floor_seq,
                ),
            )
            .where(
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.deleted_at.is_(None),
                DomainEvent.type != TEST_EVENT_TYPE,
                _subscribed_sql(dialect),
                no_delivery,
            )
            .order_by(DomainEvent.seq, WebhookEndpoint.id)
            .limit(limit)
        )
    ).all()
    created = await _insert_pending(
        session,
        [
            _pending_row(endpoint_id=ep_id, event_id=ev_id, organization_id=org_id, event_type=ev_type, now=now)
            for ep_id, ev_id, org_id, ev_type in candidates
        ],
    )
    await advance_floors(
        session,
        floor=WebhookEndpoint.fanout_floor_seq,
        mark_seq=WebhookEndpoint.fanout_mark_seq,
        mark_at=WebhookEndpoint.fanout_mark_at,
        where=[WebhookEndpoint.deleted_at.is_(None)],
        complete=len(candidates) < limit,
        oldest_open=oldest_open,
    )
    return created
