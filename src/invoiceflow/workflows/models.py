"""Our own tables around DBOS: executor heartbeats (dead-executor recovery) and seed uploads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from invoiceflow.core.db import Base, UTCDateTime, new_id, utcnow


class ExecutorHeartbeat(Base):
    """One row per process that runs workflows, beaten every few seconds.

    DBOS 3.4.0 resumes an executor's pending workflows only when that same executor starts again; a
    worker that never comes back would strand them. Every worker therefore looks for executors of its
    own application version that went quiet and recovers their workflows (ADR 0008).
    """

    __tablename__ = "executor_heartbeats"

    executor_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    app_version: Mapped[str] = mapped_column(String(64))
    # "embedded" (API + workflows in one process) or "worker".
    role: Mapped[str] = mapped_column(String(16))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Set by the survivor that took this executor's workflows over, so it is not recovered twice.
    recovered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recovered_by: Mapped[str | None] = mapped_column(String(128))


class Upload(Base):
    """A seed JSON file uploaded through `POST /documents`, rendered to PDF and Excel by a workflow."""

    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_org_created", "organization_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    # queued → processing → ready | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # The uploaded file as received, in storage.
    source_key: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    invoice_number: Mapped[str | None] = mapped_column(String(200))
    pdf_document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    xlsx_document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
