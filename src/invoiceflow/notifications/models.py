"""The `notification_deliveries` table: one row per notification, whatever its channel.

A row is claimed (inserted) before anything is sent and names the message by `dedupe_key`, unique within
the organisation: a retried workflow step finds the row of its first attempt and either skips (already
sent) or sends the same message again (same Message-ID). Every notification concerns a tenant's resource
(a password reset too: a user belongs to an organisation), so `organization_id` is required and the
uniqueness holds on both databases without partial indexes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from invoiceflow.core.db import Base, UTCDateTime, new_id, utcnow


class NotificationDelivery(Base):
    __tablename__ = "notification_deliveries"
    __table_args__ = (
        UniqueConstraint("organization_id", "dedupe_key", name="uq_notification_deliveries_org_dedupe_key"),
        # The deliveries of one resource (an invoice's emails), newest first, in keyset pages.
        Index("ix_notification_deliveries_resource", "organization_id", "resource_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    # "email" or "slack"; purpose: see notifications.service.Purpose.
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str | None] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    # An email address, or for Slack the webhook's host (the URL itself is a secret and is never stored).
    recipient: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(500))
    message_id: Mapped[str | None] = mapped_column(String(255))
    dedupe_key: Mapped[str] = mapped_column(String(255))
    # "pending" (claimed, being sent), "sent" or "failed".
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Claims so far: a send that crashed half-way counts too.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The provider's answer: the SMTP server's reply, the outbox file, Slack's status and body (truncated).
    provider_response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
