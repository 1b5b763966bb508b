"""Stored renderings of invoices, their download links, and the invoice list export.

A rendering is made once and served many times: the `documents` row names the stored file together with
the checksum of the data it was drawn from and the template that drew it, and a download renders again
only when one of the two changed (or the file went missing). Rendering is CPU-bound and runs in a worker
thread; the database write that records it is short and runs in a write session of its own, because a
download is a GET and its request session only reads.

The list export feeds keyset pages to the Excel writer through a small bounded queue, so memory holds a
few pages whatever the number of invoices.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import queue
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, cast

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.clients.models import Client
from invoiceflow.core.context import Actor
from invoiceflow.core.db import Database, new_id, utcnow
from invoiceflow.core.errors import AppError, NotFound
from invoiceflow.core.models import Organization
from invoiceflow.core.records import record_event
from invoiceflow.core.runtime import Runtime
from invoiceflow.core.settings import Settings
from invoiceflow.core.signing import DownloadLinkInvalid, sign_download, verify_download
from invoiceflow.core.storage import Storage, document_key, validate_key
from invoiceflow.documents import pdf, render_pool, xlsx
from invoiceflow.documents.model import InvoiceDocument, build_document, source_checksum
from invoiceflow.documents.models import Document, ImportedDocument
from invoiceflow.documents.snapshot import document_from_json
from invoiceflow.invoices import service as invoices
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.schemas import InvoiceFilters, InvoiceSelection, InvoiceStatus
from invoiceflow.orders.models import Order

log = logging.getLogger("invoiceflow.documents")

DocumentFormat = Literal["pdf", "xlsx"]
CONTENT_TYPES: Final[dict[str, str]] = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# Keyset pages of the list export; a few of them wait in the queue while the writer works.
EXPORT_PAGE_SIZE = 2000
_QUEUED_PAGES = 4


class ExportTooLarge(AppError):
    status_code = 422
    code = "EXPORT_TOO_LARGE"


@dataclass(frozen=True, slots=True)
class DocumentStore:
    """What storing renderings needs from the process; the app and the CLI each build one."""

    db: Database
    storage: Storage
    pdf_page_size: pdf.PageSize = "A4"
    # Render processes (documents.render_pool); 0 renders in a thread.
    render_workers: int = 0


def store_from_settings(db: Database, storage: Storage, settings: Settings) -> DocumentStore:
    return DocumentStore(
        db=db,
        storage=storage,
        pdf_page_size=settings.pdf_page_size,
        render_workers=render_pool.workers_for(settings),
    )


def store_for(runtime: Runtime) -> DocumentStore:
    """The store of a running app: the storage is created once, in the app's lifespan."""
    storage = runtime.extras.get("storage")
    if storage is None:
        raise RuntimeError("no storage configured: create_app's lifespan sets runtime.extras['storage']")
    return store_from_settings(runtime.db, cast(Storage, storage), runtime.settings)


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A stored rendering as the routes need it; `rendered` tells whether this call produced the file."""

    id: uuid.UUID
    organization_id: uuid.UUID
    invoice_id: uuid.UUID | None
    filename: str
    format: str
    storage_key: str
    content_type: str
    sha256: str
    size_bytes: int
    template_version: str | None
    source_checksum: str | None
    created_at: datetime
    rendered: bool = False


def template_version(fmt: DocumentFormat, store: DocumentStore) -> str:
    """The renderer's version plus the settings that change its output (a PDF's page size).

    Stored in the row: changing INVOICEFLOW_PDF_PAGE_SIZE re-renders PDFs on their next download, exactly
    like a new template does.
    """
    if fmt == "pdf":
        return f"{pdf.TEMPLATE_VERSION}-{store.pdf_page_size.lower()}"
    return xlsx.TEMPLATE_VERSION


async def _render(fmt: DocumentFormat, doc: InvoiceDocument, store: DocumentStore) -> bytes:
    return await render_pool.render(fmt, doc, page_size=store.pdf_page_size, workers=store.render_workers)


def _render_id(checksum: str, version: str) -> str:
    # The storage key names what was rendered and how: a new template never overwrites the old file in place.
    return hashlib.sha256(f"{checksum}\n{version}".encode()).hexdigest()


def download_filename(number: str | None, invoice_id: uuid.UUID, fmt: str) -> str:
    """`INV-2026-00042.pdf`; separators in a number pattern ("INV/2026/7") would read as folders."""
    stem = (number or str(invoice_id)).replace("/", "-").replace("\\", "-")
    return f"{stem}.{fmt}"


async def _document_of(session: AsyncSession, invoice: Invoice) -> InvoiceDocument:
    """The invoice's document model, with its client (even soft-deleted: the invoice was addressed to it),
    seller profile and order number, all read within the invoice's organisation.

    An imported invoice is its received document: rendered from the stored snapshot, with today's status.
    """
    received = (
        await session.execute(
            select(ImportedDocument.document).where(
                ImportedDocument.invoice_id == invoice.id, ImportedDocument.organization_id == invoice.organization_id
            )
        )
    ).scalar_one_or_none()
    if received is not None:
        return dataclasses.replace(document_from_json(received), status=invoice.status)
    client = (
        await session.execute(
            select(Client).where(Client.id == invoice.client_id, Client.organization_id == invoice.organization_id)
        )
    ).scalar_one()
    org = (await session.execute(select(Organization).where(Organization.id == invoice.organization_id))).scalar_one()
    order_number = None
    if invoice.order_id is not None:
        order_number = (
            await session.execute(
                select(Order.order_number).where(
                    Order.id == invoice.order_id, Order.organization_id == invoice.organization_id
                )
            )
        ).scalar_one_or_none()
    source: object = invoice
    if invoice.kind == "credit_note" and invoice.credited_invoice_id is not None:
        credited = (
            await session.execute(
                select(Invoice.invoice_number, Invoice.issue_date).where(
                    Invoice.id == invoice.credited_invoice_id, Invoice.organization_id == invoice.organization_id
                )
            )
        ).one()
        # EN 16931 BG-3: a credit note names the invoice it credits (BT-25 number, BT-26 issue date).
        source = {attr.key: getattr(invoice, attr.key) for attr in Invoice.__mapper__.column_attrs} | {
            "preceding_invoice_number": credited.invoice_number,
            "preceding_invoice_date": credited.issue_date,
        }
    return build_document(
        source, invoice.lines, client, org, allowances_charges=invoice.allowances_charges, order_number=order_number
    )


async def load_document(session: AsyncSession, actor: Actor, invoice_id: uuid.UUID) -> InvoiceDocument:
    """The document model of one of the actor's invoices (404 for anyone else's)."""
    invoice = await invoices.get_invoice(session, actor, invoice_id)
    return await _document_of(session, invoice)


def _stored(row: Document, filename: str, *, rendered: bool) -> StoredDocument:
    return StoredDocument(
        id=row.id,
        organization_id=row.organization_id,
        invoice_id=row.invoice_id,
        filename=filename,
        format=row.format,
        storage_key=row.storage_key,
        content_type=row.content_type,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        template_version=row.template_version,
        source_checksum=row.source_checksum,
        created_at=row.created_at,
        rendered=rendered,
    )


async def ensure_document(
    session: AsyncSession, actor: Actor, invoice_id: uuid.UUID, fmt: DocumentFormat, store: DocumentStore
) -> StoredDocument:
    """The stored rendering of an invoice in `fmt`, rendered and recorded first when it is missing or stale.

    Only drafts go stale: an issued invoice keeps the document first rendered for it.

    `session` only reads (a GET's session will do). Rendering the same unchanged invoice twice stores
    one file and one row: renderers are deterministic and the key is derived from what was rendered, so
    concurrent first downloads write the same bytes under the same key, and the loser of the race for
    the row updates it instead of failing.
    """
    invoice = await invoices.get_invoice(session, actor, invoice_id)
    doc = await _document_of(session, invoice)
    return await ensure_rendered(session, invoice, doc, fmt, store)


def _row_of(invoice: Invoice, doc: InvoiceDocument, fmt: str) -> Select[tuple[Document]]:
    """The invoice's one document row for the document's kind and `fmt`."""
    return select(Document).where(Document.invoice_id == invoice.id, Document.kind == doc.kind, Document.format == fmt)


async def ensure_rendered(
    session: AsyncSession, invoice: Invoice, doc: InvoiceDocument, fmt: DocumentFormat, store: DocumentStore
) -> StoredDocument:
    """`ensure_document` for a caller that already loaded the invoice (scoped to its organisation) and its
    document model."""
    checksum = source_checksum(doc)
    version = template_version(fmt, store)
    filename = download_filename(doc.number or None, invoice.id, fmt)

    current = (await session.execute(_row_of(invoice, doc, fmt))).scalar_one_or_none()
    if current is not None and await store.storage.exists(current.storage_key):
        unchanged = current.source_checksum == checksum and current.template_version == version
        # Once an invoice has left draft its document is the one that was issued: a later change to the
        # client's address, the seller profile or the template must not rewrite what the client received.
        if unchanged or invoice.status != "draft":
            return _stored(current, filename, rendered=False)

    data = await _render(fmt, doc, store)
    return await _store_new(store, invoice, doc, fmt, data, CONTENT_TYPES[fmt], version, checksum)


async def store_file(
    store: DocumentStore,
    invoice: Invoice,
    doc: InvoiceDocument,
    fmt: str,
    data: bytes,
    *,
    content_type: str,
    version: str,
) -> StoredDocument:
    """Store a file rendered elsewhere (an e-invoice) as the invoice's document in `fmt`.

    Idempotent like `ensure_document`: the key derives from the invoice's content and `version`, and an
    issued invoice keeps the first file stored for it.
    """
    checksum = source_checksum(doc)
    filename = download_filename(doc.number or None, invoice.id, fmt)
    async with store.db.read_sessions() as session:
        current = (await session.execute(_row_of(invoice, doc, fmt))).scalar_one_or_none()
    if current is not None and (current.source_checksum == checksum or invoice.status != "draft"):
        return _stored(current, filename, rendered=False)
    return await _store_new(store, invoice, doc, fmt, data, content_type, version, checksum)


async def _store_new(
    store: DocumentStore,
    invoice: Invoice,
    doc: InvoiceDocument,
    fmt: str,
    data: bytes,
    content_type: str,
    version: str,
    checksum: str,
) -> StoredDocument:
    """Write a new rendering under its content-derived key, then point the invoice's row at it."""
    key = document_key(invoice.organization_id, invoice.id, doc.kind, fmt, _render_id(checksum, version))
    stored = await store.storage.put(key, data, content_type=content_type)
    values: dict[str, Any] = {
        "storage_key": key,
        "content_type": content_type,
        "sha256": stored.sha256,
        "size_bytes": stored.size,
        "template_version": version,
        "source_checksum": checksum,
        "created_at": utcnow(),
    }
    row = await _save_row(store.db, invoice, doc, fmt, values)
    # The file of a previous rendering stays where it is: a download that read the old row may still be
    # opening it. Removing superseded files belongs to a sweep that can see which keys rows still name.
    return _stored(row, download_filename(doc.number or None, invoice.id, fmt), rendered=True)


async def _save_row(db: Database, invoice: Invoice, doc: InvoiceDocument, fmt: str, values: dict[str, Any]) -> Document:
    """Insert or update the invoice's row for (kind, format) and record PDFGenerated, in one short commit."""
    for attempt in (1, 2):
        async with db.locked_write_session() as session:
            row = (await session.execute(_row_of(invoice, doc, fmt).with_for_update())).scalar_one_or_none()
            if row is None:
                row = Document(
                    id=new_id(),
                    organization_id=invoice.organization_id,
                    invoice_id=invoice.id,
                    kind=doc.kind,
                    format=fmt,
                    **values,
                )
                session.add(row)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
            if fmt == "pdf":
                record_event(
                    session,
                    organization_id=invoice.organization_id,
                    type="PDFGenerated",
                    resource_type="invoice",
                    resource_id=invoice.id,
                    payload={
                        "invoice_id": str(invoice.id),
                        "invoice_number": doc.number or None,
                        "document_id": str(row.id),
                        "sha256": values["sha256"],
                        "size_bytes": values["size_bytes"],
                        "template_version": values["template_version"],
                    },
                )
            try:
                await session.commit()
            except IntegrityError:
                # A concurrent first download inserted the row between our read and our insert; the
                # second attempt finds it (and waits for its lock) and updates it.
                await session.rollback()
                if attempt == 2:
                    raise
                log.debug("document row of invoice %s inserted concurrently; updating it", invoice.id)
                continue
            return row
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class DownloadLink:
    url: str
    expires_at: datetime


async def download_link(
    session: AsyncSession,
    actor: Actor,
    invoice_id: uuid.UUID,
    fmt: DocumentFormat,
    store: DocumentStore,
    *,
    secret_key: str,
    public_base_url: str,
    ttl_seconds: int,
) -> DownloadLink:
    """An expiring URL for the stored rendering: S3 signs its own; local files get an HMAC-signed token."""
    document = await ensure_document(session, actor, invoice_id, fmt, store)
    return await link_to(
        document, store, secret_key=secret_key, public_base_url=public_base_url, ttl_seconds=ttl_seconds
    )


async def link_to(
    document: StoredDocument, store: DocumentStore, *, secret_key: str, public_base_url: str, ttl_seconds: int
) -> DownloadLink:
    """An expiring URL for a stored document (an invoice's rendering or an upload's)."""
    # Whole seconds: the signed token keeps whole seconds, and the answer must not outlive it.
    expires_at = (utcnow() + timedelta(seconds=ttl_seconds)).replace(microsecond=0)
    url = await store.storage.presigned_url(
        document.storage_key, expires_in=ttl_seconds, filename=document.filename, content_type=document.content_type
    )
    if url is None:
        token = sign_download(
            secret_key,
            organization_id=document.organization_id,
            key=document.storage_key,
            expires_at=expires_at,
            filename=document.filename,
        )
        url = f"{public_base_url.rstrip('/')}/api/v1/downloads/{token}"
    return DownloadLink(url=url, expires_at=expires_at)


async def resolve_signed_download(session: AsyncSession, *, secret_key: str, token: str) -> StoredDocument:
    """The stored file a signed link grants.

    403 for a tampered or expired link, or one naming a file outside its organisation; 404 when the file
    is no longer the current rendering of a live invoice (re-rendered since, or the invoice deleted).
    """
    grant = verify_download(secret_key, token, now=utcnow())
    # The token is ours (its MAC checked), but the key must still lie in the organisation's own namespace.
    if not grant.key.startswith(f"orgs/{grant.organization_id}/"):
        raise DownloadLinkInvalid()
    row = (
        await session.execute(
            select(Document)
            .outerjoin(Invoice, Invoice.id == Document.invoice_id)
            .where(
                Document.organization_id == grant.organization_id,
                Document.storage_key == grant.key,
                Invoice.deleted_at.is_(None),
            )
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("This file is no longer available: request a new download link", code="DOCUMENT_NOT_FOUND")
    grant.require_organization(row.organization_id)
    return _stored(row, grant.filename, rendered=False)


# ------------------------------------------------------------------------------------------ uploaded files

_UPLOAD_DOCUMENTS: Final = uuid.UUID("0b6c3f0e-5d1a-4e8b-9a57-2f4c8d9e1a30")


async def store_upload_rendering(
    store: DocumentStore, *, organization_id: uuid.UUID, upload_id: uuid.UUID, doc: InvoiceDocument, fmt: DocumentFormat
) -> StoredDocument:
    """Render an uploaded invoice, which has no invoice row, and record it as a document of kind "upload".

    Safe to repeat (workflow steps are at-least-once): the row's id derives from the upload and the format
    and the file's key from what was rendered, so a second run finds the first one's row and file.
    """
    document_id = uuid.uuid5(_UPLOAD_DOCUMENTS, f"{upload_id}:{fmt}")
    checksum = source_checksum(doc)
    version = template_version(fmt, store)
    render_id = _render_id(checksum, version)[:16]
    key = validate_key(f"orgs/{organization_id}/uploads/{upload_id}/{fmt}-{render_id}.{fmt}")
    filename = download_filename(doc.number or None, upload_id, fmt)
    async with store.db.read_sessions() as session:
        current = await session.get(Document, document_id)
    if current is not None and current.storage_key == key and await store.storage.exists(key):
        return _stored(current, filename, rendered=False)
    data = await _render(fmt, doc, store)
    stored = await store.storage.put(key, data, content_type=CONTENT_TYPES[fmt])
    async with store.db.locked_write_session() as session:
        row = await session.get(Document, document_id)
        if row is None:
            row = Document(id=document_id, organization_id=organization_id, invoice_id=None, kind="upload", format=fmt)
            session.add(row)
        row.storage_key, row.content_type = key, CONTENT_TYPES[fmt]
        row.sha256, row.size_bytes = stored.sha256, stored.size
        row.template_version, row.source_checksum, row.created_at = version, checksum, utcnow()
        await session.commit()
    return _stored(row, filename, rendered=True)


async def upload_rendering(
    session: AsyncSession, organization_id: uuid.UUID, document_id: uuid.UUID, *, filename: str
) -> StoredDocument:
    """A stored rendering of an upload, scoped to its organisation (404 otherwise), downloaded as `filename`."""
    row = (
        await session.execute(
            select(Document).where(
                Document.id == document_id, Document.organization_id == organization_id, Document.kind == "upload"
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("This file is no longer available", code="DOCUMENT_NOT_FOUND")
    return _stored(row, filename, rendered=False)


# --------------------------------------------------------------------------------------------- list export


class _Abort:
    """Queued instead of a page when the export stops early: the writer raises and removes its file."""


class _ExportAborted(Exception):
    pass


_ABORT: Final = _Abort()
_Item = list[xlsx.ListRow] | _Abort | None


def _drain(pages: queue.Queue[_Item]) -> Iterator[xlsx.ListRow]:
    """The rows of the queued pages, in the writer's thread; ends at None."""
    while True:
        item = pages.get()
        if item is None:
            return
        if isinstance(item, _Abort):
            raise _ExportAborted
        yield from item


async def _put(pages: queue.Queue[_Item], item: _Item, writer: asyncio.Future[int]) -> None:
    """Queue `item` without blocking the event loop; raise the writer's error if it stopped."""
    while True:
        if writer.done():
            writer.result()
            return
        try:
            pages.put_nowait(item)
            return
        except queue.Full:
            pass
        try:
            # Wait in a worker thread, a little at a time, so a writer that died is noticed.
            await asyncio.to_thread(pages.put, item, True, 0.25)
            return
        except queue.Full:
            continue


async def _stop_writer(pages: queue.Queue[_Item], writer: asyncio.Future[int]) -> None:
    """Make the writer give up and wait until it removed its half-written file."""
    while not writer.done():
        try:
            await asyncio.to_thread(pages.put, _ABORT, True, 0.25)
            break
        except queue.Full:
            continue
    await asyncio.wait([writer])
    if not writer.cancelled():
        writer.exception()  # retrieved: the error the caller sees is the one that stopped the export


async def _client_names(
    session: AsyncSession, actor: Actor, ids: set[uuid.UUID], known: dict[uuid.UUID, str | None]
) -> dict[uuid.UUID, str | None]:
    """`known`, completed with the names of the `ids` it lacks (an id without a client maps to None).

    An export names the same clients on page after page: each is looked up once, not once per page.
    """
    missing = ids - known.keys()
    if missing:
        stmt = select(Client.id, Client.name).where(
            Client.organization_id == actor.organization_id, Client.id.in_(missing)
        )
        found = {row.id: row.name for row in await session.execute(stmt)}
        known.update({client_id: found.get(client_id) for client_id in missing})
    return known


async def export_invoice_list(
    session: AsyncSession,
    actor: Actor,
    filters: InvoiceSelection,
    target: Path,
    *,
    max_rows: int = xlsx.MAX_LIST_ROWS,
    page_size: int = EXPORT_PAGE_SIZE,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write the actor's invoices matching `filters` (any cursor and limit ignored) to `target` as xlsx.

    Returns the number of invoices written. Rows are fetched page by page in the filters' sort order and
    written by a worker thread as they arrive. More than `max_rows` invoices answer 422 EXPORT_TOO_LARGE
    and leave no file behind, as does any other failure. `on_progress` receives each page's row count.
    """
    pages: queue.Queue[_Item] = queue.Queue(maxsize=_QUEUED_PAGES)
    writer: asyncio.Future[int] = asyncio.ensure_future(
        asyncio.to_thread(xlsx.write_invoice_rows, _drain(pages), target)
    )
    # The list service's limit bounds what an API caller may ask for; the export pages at its own size.
    page_filters = InvoiceFilters.model_construct(**{**dict(filters), "limit": page_size, "cursor": None})
    names: dict[uuid.UUID, str | None] = {}
    written = 0
    try:
        while True:
            rows, cursor = await invoices.list_invoices(session, actor, page_filters)
            written += len(rows)
            if written > max_rows:
                raise ExportTooLarge(
                    f"More than {max_rows:,} invoices match: narrow the filters (one Excel sheet holds "
                    f"{xlsx.MAX_LIST_ROWS:,} rows)",
                    details={"max_rows": max_rows},
                )
            names = await _client_names(session, actor, {row.client_id for row in rows}, names)
            # Plain tuples in the sheet's column order: no mapping or model per row.
            batch: list[xlsx.ListRow] = [
                (
                    row.invoice_number,
                    row.status,
                    names[row.client_id],
                    row.issue_date,
                    row.due_date,
                    row.currency,
                    row.net_amount,
                    row.vat_amount,
                    row.total_amount,
                    row.amount_paid,
                    # EN 16931 BT-115: the rounding amount (BT-114) is part of what is outstanding.
                    row.total_amount - row.amount_paid + row.rounding_amount if row.rounding_amount else None,
                )
                for row in rows
            ]
            await _put(pages, batch, writer)
            if on_progress is not None:
                on_progress(len(batch))
            if cursor is None:
                break
            page_filters = page_filters.model_copy(update={"cursor": cursor})
        await _put(pages, None, writer)
        return await writer
    except BaseException:
        await _stop_writer(pages, writer)
        raise


async def count_invoices(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    status: InvoiceStatus | None = None,
    client_id: uuid.UUID | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
) -> int:
    """How many live invoices match the command line's export filters (the total of its progress bar)."""
    stmt = select(func.count()).where(Invoice.organization_id == organization_id, Invoice.deleted_at.is_(None))
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    if client_id is not None:
        stmt = stmt.where(Invoice.client_id == client_id)
    if issued_from is not None:
        stmt = stmt.where(Invoice.issue_date >= issued_from)
    if issued_to is not None:
        stmt = stmt.where(Invoice.issue_date <= issued_to)
    return int((await session.execute(stmt.select_from(Invoice))).scalar_one())


async def invoice_document(session: AsyncSession, invoice: Invoice) -> InvoiceDocument:
    """The document model of an invoice row already loaded (and scoped to its organisation) by the caller."""
    return await _document_of(session, invoice)
