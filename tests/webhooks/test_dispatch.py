"""`dispatch_once`: events reach the broker exactly once per confirmed publish and at least once across
outages, no event is missed (including one committed after a later one), and webhook deliveries progress."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from fastapi.testclient import TestClient
from sqlalchemy import select

from invoiceflow.core.db import Database, utcnow
from invoiceflow.core.models import DomainEvent
from invoiceflow.webhooks.dispatch import dispatch_once
from invoiceflow.webhooks.models import BrokerPublication, BrokerPublicationFloor, WebhookDelivery
from invoiceflow.webhooks.rabbitmq import EventPublisher
from tests.factories import create_client, create_invoice, register
from tests.servers import free_port
from tests.webhooks.helpers import create_webhook, record_named_event, run_receiver
from tests.webhooks.test_rabbitmq import AMQP_URL, bound_queue, drain


@pytest.fixture
async def channel(exchange_name: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(AMQP_URL)
    try:
        ch = await connection.channel()
        # Declared here so that a queue can be bound before the first publish.
        await ch.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        yield ch
        await ch.exchange_delete(exchange_name)
    finally:
        await connection.close()


@pytest.fixture
async def publisher(exchange_name: str) -> AsyncIterator[EventPublisher]:
    pub = EventPublisher(AMQP_URL, exchange_name, confirm_timeout=5)
    try:
        yield pub
    finally:
        await pub.close()


async def owed_events(database: Database) -> list[str]:
    async with database.read_sessions() as session:
        stmt = select(DomainEvent.id).where(DomainEvent.type != "WebhookTest").order_by(DomainEvent.seq)
        return [str(e) for e in (await session.execute(stmt)).scalars()]


async def publications(database: Database) -> dict[str, BrokerPublication]:
    async with database.read_sessions() as session:
        rows = (await session.execute(select(BrokerPublication))).scalars()
        return {str(row.event_id): row for row in rows}


def make_events(client: TestClient) -> None:
    account = register(client, org="Acme BV")
    buyer = create_client(client, account)
    create_invoice(client, account, buyer["id"])


@pytest.mark.anyio
async def test_events_reach_a_bound_queue_exactly_once_after_two_rounds(
    client: TestClient, database: Database, exchange_name: str, channel: AbstractChannel, publisher: EventPublisher
) -> None:
    queue = await bound_queue(channel, exchange_name, "#")
    make_events(client)
    owed = await owed_events(database)
    assert len(owed) >= 3

    now = utcnow()
    first = await dispatch_once(database, now=now, publisher=publisher, allow_private_networks=False)
    second = await dispatch_once(database, now=now, publisher=publisher, allow_private_networks=False)
    assert (first.publications_created, first.published, first.publish_failures) == (len(owed), len(owed), 0)
    assert (second.publications_created, second.published) == (0, 0)

    received = await drain(queue, len(owed))
    assert [m.message_id for m in received] == owed, "each event once, in event order"
    rows = await publications(database)
    assert {row.status for row in rows.values()} == {"published"}
    assert all(row.published_at == now and row.attempts == 1 for row in rows.values())


@pytest.mark.anyio
async def test_an_outage_leaves_events_pending_and_the_next_round_publishes_them(
    client: TestClient, database: Database, exchange_name: str, channel: AbstractChannel, publisher: EventPublisher
) -> None:
    queue = await bound_queue(channel, exchange_name, "#")
    make_events(client)
    owed = await owed_events(database)
    now = utcnow()

    down = EventPublisher(f"amqp://guest:guest@127.0.0.1:{free_port()}/", exchange_name, confirm_timeout=2)
    result = await dispatch_once(database, now=now, publisher=down, allow_private_networks=False)
    assert (result.publications_created, result.published, result.publish_failures) == (len(owed), 0, 1)
    rows = await publications(database)
    assert set(rows) == set(owed)
    head = rows[owed[0]]
    assert (head.status, head.attempts) == ("failed", 1)
    assert head.last_error
    assert head.next_attempt_at is not None
    assert head.next_attempt_at > now
    assert all(rows[e].status == "pending" and rows[e].attempts == 0 for e in owed[1:])
    assert all(rows[e].next_attempt_at == now for e in owed[1:]), "untried rows are not held back"

    # The exchange deleted under a connected publisher: the broker refuses, nothing is marked published.
    await publisher.connect()
    await channel.exchange_delete(exchange_name)
    result = await dispatch_once(database, now=now, publisher=publisher, allow_private_networks=False)
    assert (result.published, result.publish_failures) == (0, 1)
    assert "published" not in {row.status for row in (await publications(database)).values()}

    # Recovery: the exchange is back (the publisher reconnects and declares it), the backoff is over.
    await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await bound_queue(channel, exchange_name, "#")
    later = now + timedelta(hours=1)
    result = await dispatch_once(database, now=later, publisher=publisher, allow_private_networks=False)
    assert (result.published, result.publish_failures) == (len(owed), 0)
    assert [m.message_id for m in await drain(queue, len(owed))] == owed
    rows = await publications(database)
    assert {row.status for row in rows.values()} == {"published"}
    assert (rows[owed[0]].attempts, rows[owed[0]].last_error) == (2, None)


@pytest.mark.anyio
async def test_an_event_committed_after_a_later_one_is_still_published(
    client: TestClient,
    database: Database,
    database_url: str,
    exchange_name: str,
    channel: AbstractChannel,
    publisher: EventPublisher,
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers: a lower seq always commits first")
    account = register(client, org="Acme BV")
    org = uuid.UUID(account.organization_id)
    queue = await bound_queue(channel, exchange_name, "#")
    before = await owed_events(database)
    await dispatch_once(database, now=utcnow(), publisher=publisher, allow_private_networks=False)
    await drain(queue, len(before))

    async with database.write_sessions() as slow:
        early = record_named_event(slow, org, "early")
        await slow.flush()  # takes its seq now, commits last
        async with database.write_sessions() as fast:
            late = record_named_event(fast, org, "late")
            await fast.flush()
            await fast.commit()
        assert early.seq < late.seq
        for _ in range(3):
            await dispatch_once(database, now=utcnow(), publisher=publisher, allow_private_networks=False)
        assert [m.message_id for m in await drain(queue, 1)] == [str(late.id)]
        async with database.read_sessions() as session:
            floor = (await session.execute(select(BrokerPublicationFloor.floor_seq))).scalar_one()
        assert floor < early.seq, "the floor must not pass a seq that may still commit"
        await slow.commit()

    result = await dispatch_once(database, now=utcnow(), publisher=publisher, allow_private_networks=False)
    assert result.published == 1
    assert [m.message_id for m in await drain(queue, 1)] == [str(early.id)]


@pytest.mark.anyio
async def test_dispatch_drives_a_webhook_delivery_to_success_without_a_broker(
    private_client: TestClient, database: Database
) -> None:
    account = register(private_client, org="Acme BV")
    with run_receiver(lambda n, _: 503 if n == 1 else 200) as receiver:
        create_webhook(private_client, account, url=receiver.url, event_types=["ClientCreated"])
        create_client(private_client, account)
        now = utcnow()
        first = await dispatch_once(database, now=now, publisher=None, allow_private_networks=True)
        assert (first.deliveries_created, first.deliveries_attempted, first.deliveries_succeeded) == (1, 1, 0)
        again = await dispatch_once(database, now=now, publisher=None, allow_private_networks=True)
        assert (again.deliveries_created, again.deliveries_attempted) == (0, 0), "not due before its backoff"
        retry = await dispatch_once(
            database, now=now + timedelta(minutes=5), publisher=None, allow_private_networks=True
        )
        assert (retry.deliveries_attempted, retry.deliveries_succeeded) == (1, 1)
    assert [r.answered for r in receiver.requests] == [503, 200]
    async with database.read_sessions() as session:
        statuses = list((await session.execute(select(WebhookDelivery.status))).scalars())
    assert statuses == ["succeeded"]
    # No broker configured: nothing is owed to it, and its floor moved on.
    assert await publications(database) == {}
    assert first.publications_created == retry.published == 0
