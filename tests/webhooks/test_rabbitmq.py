"""Publishing events to the RabbitMQ server on this machine, and consuming them back."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue

from invoiceflow.core.models import DomainEvent
from invoiceflow.core.settings import Settings
from invoiceflow.webhooks.rabbitmq import EventPublisher, PublishFailed, publisher_from_settings

AMQP_URL = os.environ.get("INVOICEFLOW_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
ORG = uuid.UUID("0b9a3c55-3d4c-4c55-9a53-1e2f3a4b5c6d")


@pytest.fixture
async def channel(exchange_name: str) -> AsyncIterator[AbstractChannel]:
    """A consumer's channel; the test exchange is deleted afterwards."""
    connection = await aio_pika.connect(AMQP_URL)
    try:
        ch = await connection.channel()
        yield ch
        await ch.exchange_delete(exchange_name)
    finally:
        await connection.close()


def event(type_: str, **payload: str) -> DomainEvent:
    return DomainEvent(
        id=uuid.uuid4(),
        organization_id=ORG,
        type=type_,
        resource_type="invoice",
        resource_id=str(uuid.uuid4()),
        payload=payload,
        occurred_at=datetime(2031, 3, 4, 9, 30, 15, 123000, tzinfo=UTC),
    )


async def bound_queue(channel: AbstractChannel, exchange: str, *keys: str) -> AbstractQueue:
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for key in keys:
        await queue.bind(exchange, routing_key=key)
    return queue


async def drain(queue: AbstractQueue, expected: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    got = []
    for _ in range(expected + 1):
        message = await queue.get(no_ack=True, fail=False, timeout=5)
        if message is None:
            break
        got.append(message)
    return got


@pytest.mark.anyio
async def test_events_are_published_persistent_with_type_as_routing_key_and_id_as_message_id(
    exchange_name: str, channel: AbstractChannel
) -> None:
    async with EventPublisher(AMQP_URL, exchange_name) as publisher:
        everything = await bound_queue(channel, exchange_name, "#")
        invoices = await bound_queue(channel, exchange_name, "InvoiceCreated", "InvoicePaid")
        glob = await bound_queue(channel, exchange_name, "Invoice*")
        sent = [
            event("InvoiceCreated", invoice_number="INV-2031-00001", total_amount="121.00"),
            event("ClientCreated", name="Müller & Söhne GmbH"),
            event("InvoicePaid", invoice_number="INV-2031-00001"),
        ]
        for e in sent:
            await publisher.publish(e)

    received = await drain(everything, 3)
    assert [m.message_id for m in received] == [str(e.id) for e in sent]
    for message, e in zip(received, sent, strict=True):
        assert message.routing_key == e.type
        assert message.type == e.type
        assert message.content_type == "application/json"
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers == {"organization_id": str(ORG)}
        assert json.loads(message.body) == {
            "id": str(e.id),
            "type": e.type,
            "created_at": "2031-03-04T09:30:15.123000Z",
            "organization_id": str(ORG),
            "data": e.payload,
        }
    assert [m.routing_key for m in await drain(invoices, 2)] == ["InvoiceCreated", "InvoicePaid"]
    assert await drain(glob, 0) == [], "AMQP topic patterns match whole words only"


@pytest.mark.anyio
async def test_the_exchange_is_durable_and_topic(exchange_name: str, channel: AbstractChannel) -> None:
    async with EventPublisher(AMQP_URL, exchange_name):
        pass
    # A passive declare with other properties would fail: the exchange exists as a durable topic exchange.
    await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True, passive=True)
    same = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
    assert same.name == exchange_name


@pytest.mark.anyio
async def test_an_unconfirmed_publish_raises(exchange_name: str, channel: AbstractChannel) -> None:
    """The broker refuses a message for an exchange that is gone: publish says so instead of returning."""
    publisher = EventPublisher(AMQP_URL, exchange_name, confirm_timeout=5)
    await publisher.connect()
    try:
        await channel.exchange_delete(exchange_name)
        with pytest.raises(PublishFailed):
            await publisher.publish(event("InvoiceCreated"))
    finally:
        await publisher.close()


@pytest.mark.anyio
async def test_an_unreachable_broker_fails_to_connect() -> None:
    from tests.servers import free_port

    publisher = EventPublisher(f"amqp://guest:guest@127.0.0.1:{free_port()}/", "invoiceflow.test", confirm_timeout=2)
    with pytest.raises((ConnectionError, OSError)):
        await publisher.connect()


def test_the_publisher_is_on_only_when_configured() -> None:
    assert publisher_from_settings(Settings(rabbitmq_url=None)) is None
    publisher = publisher_from_settings(Settings(rabbitmq_url=AMQP_URL, rabbitmq_exchange="acme.events"))
    assert publisher is not None
    assert (publisher.url, publisher.exchange_name) == (AMQP_URL, "acme.events")
    assert Settings().rabbitmq_exchange == "invoiceflow.events"
    assert Settings().webhook_allow_private_networks is False
