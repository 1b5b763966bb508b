"""The `documents` table: which stored file is the current rendering of an invoice in a given format.

The file itself lives in object storage (core.storage) under `storage_key`; the row is what the API
lists and what download links are issued for. There is one row per invoice, kind and format: a
re-render updates that row in place (new key, checksum and size), so "the PDF of invoice X" is never
ambiguous. Uploaded files have no invoice yet, and any number of them may exist.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from invoiceflow.core.db import Base, UTCDateTime, new_id, utcnow


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("invoice_id", "kind", "format", name="uq_documents_invoice_kind_format"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    # "invoice", "credit_note", "upload"; format: "pdf", "xlsx", "ubl", "cii", "facturx".
    kind: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(16))
    # S3 keys are at most 1024 bytes; the key is relative to the storage root or bucket prefix.
    storage_key: Mapped[str] = mapped_column(String(1024))
    content_type: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # What produced the file: a render is skipped when both still match the invoice (steps are retried).
    template_version: Mapped[str | None] = mapped_column(String(32))
    source_checksum: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportedDocument(Base):
    """An invoice that arrived as a document (UBL, CII or JSON) rather than through the API.

    The invoice row holds what lists and filters need; this row keeps the document as it was received:
    `document` is its full document model (documents/snapshot.py), from which its PDF and e-invoices are
    rendered, so a re-export carries the sender's own amounts and terms. One row per invoice; the pair
    (supplier, number) is unique per organisation, which is how a second import of the same invoice is
    recognised.
    """

    __tablename__ = "imported_documents"
    __table_args__ = (
        UniqueConstraint("invoice_id", name="uq_imported_documents_invoice"),
        Index("uq_imported_documents_supplier_number", "organization_id", "supplier_key", "number", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    # The seller as identified in the document: VAT id, else electronic address, else legal id, else name.
    supplier_key: Mapped[str] = mapped_column(String(300))
    number: Mapped[str] = mapped_column(String(200))
    # "ubl", "cii" or "json"; the specification identifier (BT-24) the document claimed.
    syntax: Mapped[str] = mapped_column(String(8))
    specification_id: Mapped[str | None] = mapped_column(String(300))
    # The received file, kept as it was in storage (core.storage), and its digest.
    storage_key: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The official rules' verdict at import time ({"status": "passed"|"failed"|"skipped", findings...}) and
    # every amount where the document disagrees with our recomputation (kept as the document states it).
    validation: Mapped[dict[str, Any]] = mapped_column(JSON)
    differences: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
