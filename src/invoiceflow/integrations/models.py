"""Integrations (a source + destination pair), their jobs, one item per source document, and the ledger of
what each destination received.

`sent_records` is the dedupe ledger: one row per (destination, supplier, invoice number), keyed by exactly
that, so the key is the primary key and a page of documents is checked in one indexed lookup. It is meant to
hold millions of rows: no surrogate id, no secondary index.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from invoiceflow.core.db import Base, UTCDateTime, new_id, utcnow

JOB_TYPES = ("manual", "scheduled")
JOB_STATUSES = ("queued", "running", "completed", "completed_with_errors", "failed", "cancelled")
FINAL_STATUSES = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
# `pushing`: committed before the push, so that a crash leaves a trace to resume from (same Idempotency-Key).
ITEM_OUTCOMES = ("pushing", "sent", "duplicate", "invalid", "failed", "changed")


class Integration(Base):
    __tablename__ = "integrations"
    __table_args__ = (
        Index("ix_integrations_org_created", "organization_id", "created_at", "id"),
        Index(
            "uq_integrations_org_name_live",
            "organization_id",
            "name",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
        Index(
            "uq_integrations_org_default",
            "organization_id",
            unique=True,
            postgresql_where=text("is_default AND deleted_at IS NULL"),
            sqlite_where=text("is_default AND deleted_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    # Connector settings without their secrets ({"type": "http", "url": …, "headers": {name: ""}, …}).
    source: Mapped[dict[str, Any]] = mapped_column(JSON)
    destination: Mapped[dict[str, Any]] = mapped_column(JSON)
    # {"source": {...}, "destination": {...}} encrypted (crypto.py); never returned by the API.
    secrets: Mapped[str | None] = mapped_column(Text)
    # Names the receiving system (organisation + destination address) in the dedupe ledger: two integrations
    # that push to the same place share what was sent there.
    destination_key: Mapped[uuid.UUID] = mapped_column(Uuid)
    schedule: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Brussels")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    notify_on_success: Mapped[bool] = mapped_column(Boolean, default=False)
    page_size: Mapped[int] = mapped_column(Integer, default=100)
    # The source cursor after the last recorded page (of a job that advances it: see jobs.py).
    cursor: Mapped[str | None] = mapped_column(Text)
    # The run lock: the job that holds it and until when (renewed by every page it records).
    active_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    active_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IntegrationJob(Base):
    __tablename__ = "integration_jobs"
    __table_args__ = (
        Index("ix_integration_jobs_org_created", "organization_id", "created_at", "id"),
        Index("ix_integration_jobs_integration_created", "integration_id", "created_at"),
        # A scheduled run happens once per scheduled time (the trigger names it), however often it is asked for.
        Index(
            "uq_integration_jobs_scheduled_trigger",
            "integration_id",
            "trigger",
            unique=True,
            postgresql_where=text("job_type = 'scheduled'"),
            sqlite_where=text("job_type = 'scheduled'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    integration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    job_type: Mapped[str] = mapped_column(String(16))
    # Who or what started it: "api", "cli", "schedule:2026-11-22T02:00" (local time of the scheduled run).
    trigger: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(24), default="queued")
    force_processing: Mapped[bool] = mapped_column(Boolean, default=False)
    # Source document ids to process (the others are skipped); null = everything new.
    invoice_ids: Mapped[list[str] | None] = mapped_column(JSON)
    requested_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    # Where the next page starts, and how many pages were recorded (jobs.process_page).
    cursor: Mapped[str | None] = mapped_column(Text)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    source_exhausted: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A user asked to stop the job (POST /jobs/{id}/cancel). A running job is never flipped to `cancelled`
    # from outside: its runner stops at the next page boundary and `finish_job` ends it (jobs/run.py).
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IntegrationJobItem(Base):
    """One source document in one job: what was decided and what the destination answered."""

    __tablename__ = "integration_job_items"
    __table_args__ = (
        UniqueConstraint("job_id", "source_id", name="uq_integration_job_items_job_source"),
        Index("ix_integration_job_items_job_page", "job_id", "page_no"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("integration_jobs.id", ondelete="CASCADE"))
    page_no: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    source_id: Mapped[str] = mapped_column(String(255))
    supplier_key: Mapped[str | None] = mapped_column(String(255))
    invoice_number: Mapped[str | None] = mapped_column(String(200))
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    rule_ids: Mapped[list[str] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    remote_id: Mapped[str | None] = mapped_column(String(255))
    response: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SentRecord(Base):
    """The dedupe ledger: this destination received this supplier's invoice number, with this content."""

    __tablename__ = "sent_records"

    destination_key: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    supplier_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    invoice_number: Mapped[str] = mapped_column(String(200), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    document_sha256: Mapped[str] = mapped_column(String(64))
    # The job that sent it (not a foreign key: the ledger outlives the job history).
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    remote_id: Mapped[str | None] = mapped_column(String(255))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
