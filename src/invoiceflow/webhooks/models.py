"""Webhook endpoints and one delivery row per (endpoint, event)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from invoiceflow.core.db import Base, UTCDateTime, new_id, utcnow

DELIVERY_STATUSES = ("pending", "succeeded", "failed", "dead")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_org_created", "organization_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    # Event types to deliver; empty = every type.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Kept in clear: every delivery is signed with it. Shown once (create, rotate), masked afterwards.
    secret: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Fan-out bookkeeping (fanout.fan_out_pending): every event with seq <= fanout_floor_seq has been
    # considered for this endpoint; (fanout_mark_seq, fanout_mark_at) is the candidate next floor, taken on
    # PostgreSQL once no transaction that was open at fanout_mark_at is still open.
    fanout_floor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    fanout_mark_seq: Mapped[int | None] = mapped_column(BigInteger)
    fanout_mark_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event for one endpoint: its retry state and the outcome of its latest attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        # What is due: only the rows still to be attempted are indexed.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'failed')"),
            sqlite_where=text("status IN ('pending', 'failed')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_response: Mapped[str | None] = mapped_column(String(2000))
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_duration_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


PUBLICATION_STATUSES = ("pending", "published", "failed")


class BrokerPublication(Base):
    """One event to publish to the broker: its retry state and the outcome of its latest attempt
    (see `dispatch.py`)."""

    __tablename__ = "broker_publications"
    __table_args__ = (
        # What is due, in event order: only the rows still to be published are indexed.
        Index(
            "ix_broker_publications_due",
            "seq",
            postgresql_where=text("status IN ('pending', 'failed')"),
            sqlite_where=text("status IN ('pending', 'failed')"),
        ),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    # The event's seq: publications go out in this order.
    seq: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BrokerPublicationFloor(Base):
    """The broker's fan-out floor, one row (id 1): every event with seq <= floor_seq has a publication
    row or was recorded while no broker was configured. Same rule as `WebhookEndpoint.fanout_floor_seq`."""

    __tablename__ = "broker_publication_floor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    floor_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    mark_seq: Mapped[int | None] = mapped_column(BigInteger)
    mark_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
