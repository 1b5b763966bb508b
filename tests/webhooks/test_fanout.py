"""Fan-out: exactly one delivery per (matching enabled endpoint, event), however often and however
concurrently it runs, and no event missed, including one whose transaction commits after a later one."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from invoiceflow.core.db import Database
from invoiceflow.core.models import DomainEvent
from invoiceflow.core.records import record_event
from invoiceflow.webhooks.fanout import fan_out, fan_out_pending
from invoiceflow.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.auth.helpers import ok
from tests.factories import Account, create_client, create_invoice, register
from tests.webhooks.helpers import BASE, create_webhook, record_named_event, send_webhook_test


async def run_fan_out(database: Database, *, limit: int = 500) -> int:
    async with database.write_sessions() as session:
        created = await fan_out_pending(session, limit=limit)
        await session.commit()
    return created


async def pairs(database: Database) -> list[tuple[str, str]]:
    async with database.read_sessions() as session:
        rows = (await session.execute(select(WebhookDelivery.endpoint_id, WebhookDelivery.event_id))).all()
    return [(str(a), str(b)) for a, b in rows]


async def events_after(database: Database, seq: int) -> list[DomainEvent]:
    async with database.read_sessions() as session:
        stmt = select(DomainEvent).where(DomainEvent.seq > seq).order_by(DomainEvent.seq)
        return list((await session.execute(stmt)).scalars())


async def max_seq(database: Database) -> int:
    async with database.read_sessions() as session:
        return int((await session.execute(select(func.coalesce(func.max(DomainEvent.seq), 0)))).scalar_one())


class World:
    """Two organisations and their endpoints, then some events."""

    def __init__(self, client: TestClient) -> None:
        self.acme = register(client, org="Acme BV")
        self.other = register(client, org="Other BV")
        self.all = create_webhook(client, self.acme)["id"]
        self.invoices = create_webhook(client, self.acme, event_types=["InvoiceCreated"])["id"]
        self.disabled = create_webhook(client, self.acme, enabled=False)["id"]
        deleted = create_webhook(client, self.acme)["id"]
        ok(client.delete(f"{BASE}/{deleted}", headers=self.acme.headers))
        self.deleted = deleted
        self.foreign = create_webhook(client, self.other)["id"]

    @staticmethod
    def make_events(client: TestClient, account: Account) -> None:
        buyer = create_client(client, account)
        create_invoice(client, account, buyer["id"])


def expected_pairs(world: World, events: list[DomainEvent]) -> Counter[tuple[str, str]]:
    want: Counter[tuple[str, str]] = Counter()
    for event in events:
        if str(event.organization_id) == world.acme.organization_id:
            want[(world.all, str(event.id))] += 1
            if event.type == "InvoiceCreated":
                want[(world.invoices, str(event.id))] += 1
        else:
            want[(world.foreign, str(event.id))] += 1
    return want


@pytest.mark.anyio
async def test_one_delivery_per_matching_endpoint_and_event_even_when_run_twice(
    client: TestClient, database: Database
) -> None:
    world = World(client)
    history = await max_seq(database)
    World.make_events(client, world.acme)
    World.make_events(client, world.other)
    events = await events_after(database, history)
    assert {e.type for e in events} >= {"ClientCreated", "InvoiceCreated"}
    want = expected_pairs(world, events)

    assert await run_fan_out(database) == sum(want.values())
    assert Counter(await pairs(database)) == want
    assert await run_fan_out(database) == 0
    assert Counter(await pairs(database)) == want

    # Nothing from before the endpoints existed (registration events), nothing to the disabled or deleted.
    endpoints = {endpoint for endpoint, _ in want}
    assert endpoints == {world.all, world.invoices, world.foreign}


@pytest.mark.anyio
async def test_concurrent_runs_create_each_delivery_once(client: TestClient, database: Database) -> None:
    world = World(client)
    history = await max_seq(database)
    for _ in range(3):
        World.make_events(client, world.acme)
    World.make_events(client, world.other)
    want = expected_pairs(world, await events_after(database, history))

    created = await asyncio.gather(*(run_fan_out(database) for _ in range(4)))
    assert sum(created) == sum(want.values())
    assert Counter(await pairs(database)) == want


@pytest.mark.anyio
async def test_batches_continue_where_the_last_one_stopped(client: TestClient, database: Database) -> None:
    world = World(client)
    history = await max_seq(database)
    World.make_events(client, world.acme)
    World.make_events(client, world.acme)
    want = expected_pairs(world, await events_after(database, history))

    batches = []
    while (created := await run_fan_out(database, limit=2)) > 0:
        batches.append(created)
    assert all(b <= 2 for b in batches)
    assert sum(batches) == sum(want.values())
    assert Counter(await pairs(database)) == want


@pytest.mark.anyio
async def test_floors_move_up_once_events_are_settled(client: TestClient, database: Database) -> None:
    """The anti-join stays small: after complete runs with no transaction open, the floor is the top."""
    world = World(client)
    World.make_events(client, world.acme)
    for _ in range(2):  # PostgreSQL: the first run takes a mark, the next one settles it.
        await run_fan_out(database)
    top = await max_seq(database)
    async with database.read_sessions() as session:
        floors = dict(
            (await session.execute(select(WebhookEndpoint.id, WebhookEndpoint.fanout_floor_seq))).tuples().all()
        )
    assert floors[uuid.UUID(world.all)] == top
    assert floors[uuid.UUID(world.disabled)] == top, "a disabled endpoint does not get a backlog"
    # Enabling it later delivers what happens from then on, not what happened while it was off.
    ok(client.patch(f"{BASE}/{world.disabled}", json={"enabled": True}, headers=world.acme.headers))
    assert await run_fan_out(database) == 0
    create_client(client, world.acme)
    await run_fan_out(database)
    assert sum(1 for endpoint, _ in await pairs(database) if endpoint == world.disabled) == 1


@pytest.mark.anyio
async def test_fan_out_in_the_recording_transaction(client: TestClient, database: Database) -> None:
    world = World(client)
    async with database.write_sessions() as session:
        event = record_event(
            session,
            organization_id=uuid.UUID(world.acme.organization_id),
            type="InvoiceCreated",
            resource_type="invoice",
            resource_id=uuid.uuid4(),
            payload={"total_amount": "121.00"},
        )
        await session.flush()
        assert await fan_out(session, event) == 2
        assert await fan_out(session, event) == 0
        await session.commit()
    assert await run_fan_out(database) == 0
    assert Counter(await pairs(database)) == Counter(
        {(world.all, str(event.id)): 1, (world.invoices, str(event.id)): 1}
    )


@pytest.mark.anyio
async def test_a_test_event_goes_only_to_its_endpoint(client: TestClient, database: Database) -> None:
    world = World(client)
    send_webhook_test(client, world.acme, world.invoices)
    assert await run_fan_out(database) == 0
    assert [endpoint for endpoint, _ in await pairs(database)] == [world.invoices]


@pytest.mark.anyio
async def test_an_event_committed_after_a_later_one_is_not_missed(
    client: TestClient, database: Database, database_url: str
) -> None:
    """`seq` is allocation order: the transaction holding the lower seq may commit last. SQLite has one
    writer, so there the order cannot invert; on PostgreSQL the dispatcher runs while it is open."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: a lower seq always commits first")
    world = World(client)
    org = uuid.UUID(world.acme.organization_id)

    async with database.write_sessions() as slow:
        early = record_named_event(slow, org, "early")
        await slow.flush()  # takes its seq now, commits last
        async with database.write_sessions() as fast:
            late = record_named_event(fast, org, "late")
            await fast.flush()
            await fast.commit()
        assert early.seq < late.seq

        for _ in range(3):  # however many runs happen while the early transaction is open
            await run_fan_out(database)
        assert {e for _, e in await pairs(database)} == {str(late.id)}
        async with database.read_sessions() as session:
            floor = (
                await session.execute(
                    select(WebhookEndpoint.fanout_floor_seq).where(WebhookEndpoint.id == uuid.UUID(world.all))
                )
            ).scalar_one()
        assert floor < early.seq, "the floor must not pass a seq that may still commit"
        await slow.commit()

    assert await run_fan_out(database) == 2
    assert Counter(await pairs(database)) == Counter(
        {
            (world.all, str(late.id)): 1,
            (world.invoices, str(late.id)): 1,
            (world.all, str(early.id)): 1,
            (world.invoices, str(early.id)): 1,
        }
    )
