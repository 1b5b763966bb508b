"""Publishing events to a RabbitMQ topic exchange (scale-out mode, when `INVOICEFLOW_RABBITMQ_URL` is set).

Each event is one persistent message on a durable topic exchange (`INVOICEFLOW_RABBITMQ_EXCHANGE`,
default `invoiceflow.events`): routing key = event type, `message_id` = event id (consumers deduplicate
on it: publishing is at least once), body = the same JSON a webhook receives, `content_type`
application/json, `type` = event type, header `organization_id`. An event type is one word of a topic
routing key, so a queue binds the types it wants one by one (`InvoiceCreated`, `InvoicePaid`) or takes
everything with `#`; a pattern like `Invoice*` is not a glob in AMQP and matches nothing.

`publish` returns only once the broker has confirmed the message (publisher confirms): a nack, a
channel or connection failure or no confirm within the timeout raises `PublishFailed`, and the caller
retries later. A message no queue is bound for is dropped by the broker, as a topic exchange does.
"""

from __future__ import annotations

from types import TracebackType

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection
from aio_pika.exceptions import AMQPError
from pamqp.commands import Basic

from invoiceflow.core.models import DomainEvent
from invoiceflow.core.settings import Settings
from invoiceflow.webhooks.delivery import event_body

DEFAULT_CONFIRM_TIMEOUT_SECONDS = 10.0


class PublishFailed(Exception):
    """The broker did not confirm the message: publish it again later."""


class EventPublisher:
    def __init__(
        self,
        url: str,
        exchange: str = "invoiceflow.events",
        *,
        confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT_SECONDS,
        app_id: str = "invoiceflow",
    ) -> None:
        self.url = url
        self.exchange_name = exchange
        self.confirm_timeout = confirm_timeout
        self.app_id = app_id
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def connect(self) -> None:
        """Connect (reconnecting by itself after a broker restart) and declare the exchange."""
        if self._exchange is not None:
            return
        self._connection = await aio_pika.connect_robust(self.url, timeout=self.confirm_timeout)
        self._channel = await self._connection.channel(publisher_confirms=True)
        assert self._channel is not None
        self._exchange = await self._channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def close(self) -> None:
        connection, self._connection, self._channel, self._exchange = self._connection, None, None, None
        if connection is not None:
            await connection.close()

    async def __aenter__(self) -> EventPublisher:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def publish(self, event: DomainEvent) -> None:
        """Publish one event and wait for the broker's confirm."""
        await self.connect()
        assert self._exchange is not None
        message = aio_pika.Message(
            event_body(event),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(event.id),
            type=event.type,
            timestamp=event.occurred_at,
            app_id=self.app_id,
            headers={"organization_id": str(event.organization_id)},
        )
        try:
            confirmation = await self._exchange.publish(
                message, routing_key=event.type, mandatory=False, timeout=self.confirm_timeout
            )
        except TimeoutError as exc:
            raise PublishFailed(f"no confirm for event {event.id} within {self.confirm_timeout} s") from exc
        except (AMQPError, ConnectionError) as exc:
            raise PublishFailed(f"publishing event {event.id} failed: {exc!r}") from exc
        if not isinstance(confirmation, Basic.Ack):
            raise PublishFailed(f"the broker did not acknowledge event {event.id}: {confirmation!r}")


def publisher_from_settings(settings: Settings) -> EventPublisher | None:
    """The configured publisher (not connected yet), or None when `INVOICEFLOW_RABBITMQ_URL` is unset."""
    if not settings.rabbitmq_url:
        return None
    return EventPublisher(settings.rabbitmq_url, settings.rabbitmq_exchange)
