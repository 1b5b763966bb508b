"""The `invoiceflow` connector kind: this organisation's own invoices as a source, and its invoices as a
destination (received documents imported as invoices, as `POST /invoices/import` does).

Source: issued invoices and credit notes (they have a `sent_at`; drafts are not legal documents yet and
imported ones are someone else's), oldest first, as UBL 2.1 (Peppol BIS Billing 3.0). The cursor is the
(`sent_at`, id) of the last invoice of a page.

Destination: `import_document` in a transaction of its own per document. The import refuses a second copy of
a supplier's number (409 `DUPLICATE_INVOICE`): that is this protocol's "duplicate". Any other refusal is a
rejection, recorded with the error. The organisation acts as itself (a system actor).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_, select

from invoiceflow.core.context import system_actor
from invoiceflow.core.db import Database
from invoiceflow.core.errors import AppError
from invoiceflow.core.pagination import decode_cursor, encode_cursor
from invoiceflow.core.storage import Storage
from invoiceflow.documents.service import load_document
from invoiceflow.einvoicing.importing import import_document
from invoiceflow.einvoicing.ubl import to_ubl
from invoiceflow.einvoicing.validator import Validator
from invoiceflow.integrations.connectors.base import PushResult, SourceDocument, SourcePage, keep
from invoiceflow.invoices.models import Invoice

IMPORTED_STATUS = "imported"


class InvoiceflowSource:
    def __init__(self, db: Database, organization_id: uuid.UUID) -> None:
        self.db = db
        self.organization_id = organization_id

    async def fetch_page(self, cursor: str | None, limit: int) -> SourcePage:
        actor = system_actor(self.organization_id)
        stmt = select(Invoice.id, Invoice.sent_at).where(
            Invoice.organization_id == self.organization_id,
            Invoice.sent_at.is_not(None),
            Invoice.invoice_number.is_not(None),
            Invoice.deleted_at.is_(None),
            Invoice.status != IMPORTED_STATUS,
        )
        if cursor:
            raw_at, raw_id = decode_cursor(cursor, length=2)
            after_at, after_id = datetime.fromisoformat(str(raw_at)), uuid.UUID(str(raw_id))
            stmt = stmt.where(or_(Invoice.sent_at > after_at, and_(Invoice.sent_at == after_at, Invoice.id > after_id)))
        stmt = stmt.order_by(Invoice.sent_at, Invoice.id).limit(limit)
        documents: list[SourceDocument] = []
        async with self.db.read_sessions() as session:
            rows = (await session.execute(stmt)).all()
            for row in rows:
                doc = await load_document(session, actor, row.id)
                documents.append(SourceDocument(source_id=str(row.id), format="ubl", content=to_ubl(doc)))
            await session.rollback()
        if not rows:
            return SourcePage(documents=[], next_cursor=cursor)
        last = rows[-1]
        return SourcePage(documents=documents, next_cursor=encode_cursor([last.sent_at.isoformat(), str(last.id)]))

    async def aclose(self) -> None:
        return None


class InvoiceflowDestination:
    def __init__(
        self, db: Database, organization_id: uuid.UUID, *, storage: Storage, validator: Validator | None
    ) -> None:
        self.db = db
        self.organization_id = organization_id
        self.storage = storage
        self.validator = validator

    async def push(
        self, document: bytes, *, idempotency_key: str, filename: str, content_type: str = "application/xml"
    ) -> PushResult:
        actor = system_actor(self.organization_id)
        async with self.db.locked_write_session() as session:
            try:
                imported = await import_document(
                    session, actor, document, storage=self.storage, validator=self.validator
                )
            except AppError as exc:
                await session.rollback()
                body = orjson.dumps({"code": exc.code, "message": exc.message, "details": exc.details}).decode()
                if exc.code == "DUPLICATE_INVOICE":
                    existing: Any = exc.details.get("existing_invoice_id")
                    return PushResult("duplicate", exc.status_code, existing, keep(body), 1)
                return PushResult("rejected", exc.status_code, None, keep(body), 1)
            await session.commit()
        invoice_id = str(imported.invoice.id)
        return PushResult("accepted", 201, invoice_id, keep(orjson.dumps({"id": invoice_id}).decode()), 1)

    async def aclose(self) -> None:
        return None
