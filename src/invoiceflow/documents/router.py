"""Invoice documents over HTTP: the stored PDF and Excel files, expiring links to them, the list export.

Included before the invoices router: `/invoices/export.xlsx` would otherwise be taken for an invoice id.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from invoiceflow.auth.deps import ActorDep
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.db import utcnow
from invoiceflow.core.runtime import RuntimeDep, SessionDep
from invoiceflow.core.schemas import OutputModel
from invoiceflow.core.storage import attachment_disposition
from invoiceflow.documents import service
from invoiceflow.documents.service import CONTENT_TYPES, DocumentFormat, StoredDocument
from invoiceflow.invoices.schemas import InvoiceSelection

router = APIRouter(prefix="/api/v1", tags=["documents"])


class DownloadUrl(OutputModel):
    url: str
    expires_at: datetime


def _file_responses(content_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {content_type: {"schema": {"type": "string", "format": "binary"}}}, "description": description}
    }


def _not_modified(request: Request, document: StoredDocument) -> Response | None:
    """304 when the caller already holds this rendering (If-None-Match), before any storage read."""
    etag = f'"{document.sha256}"'
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": _CACHE_CONTROL})
    return None


# Invoices are personal data: no shared cache keeps them, and the browser revalidates with the ETag.
_CACHE_CONTROL = "private, no-cache"


async def _send(request: Request, document: StoredDocument, runtime: RuntimeDep) -> Response:
    not_modified = _not_modified(request, document)
    if not_modified is not None:
        return not_modified
    stream = await service.store_for(runtime).storage.open_stream(document.storage_key)
    headers = {
        "Content-Disposition": attachment_disposition(document.filename),
        "ETag": f'"{document.sha256}"',
        "Cache-Control": _CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(stream, media_type=document.content_type, headers=headers)


async def _download(
    fmt: DocumentFormat,
    invoice_id: uuid.UUID,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    document = await service.ensure_document(session, actor, invoice_id, fmt, service.store_for(runtime))
    return await _send(request, document, runtime)


@router.get(
    "/invoices/export.xlsx",
    response_class=FileResponse,
    responses=_file_responses(CONTENT_TYPES["xlsx"], "The matching invoices, one row each, as an Excel workbook."),
)
async def export_invoices(
    actor: ActorDep, session: SessionDep, filters: Annotated[InvoiceSelection, Query()]
) -> Response:
    """Export the invoices matching the list filters (no paging) as one workbook.

    The file is written to a temporary file first, so a failure is an error response rather than a
    truncated download; more than one sheet's worth of invoices answers 422 EXPORT_TOO_LARGE.
    """
    path = _temporary_path()
    try:
        count = await service.export_invoice_list(session, actor, filters, path)
    except BaseException:
        _remove(path)
        raise
    filename = f"invoices-{utcnow():%Y%m%d-%H%M%S}.xlsx"
    return _TemporaryFileResponse(
        path,
        media_type=CONTENT_TYPES["xlsx"],
        headers={"Content-Disposition": attachment_disposition(filename), "X-Total-Count": str(count)},
    )


@router.get(
    "/invoices/{invoice_id}/pdf",
    response_class=StreamingResponse,
    responses=_file_responses(CONTENT_TYPES["pdf"], "The invoice as PDF (rendered first when needed)."),
)
async def invoice_pdf(
    invoice_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The stored PDF of the invoice; rendered and stored first when the invoice or template changed."""
    return await _download("pdf", invoice_id, request, actor, session, runtime)


@router.get(
    "/invoices/{invoice_id}/xlsx",
    response_class=StreamingResponse,
    responses=_file_responses(CONTENT_TYPES["xlsx"], "The invoice as an Excel workbook (rendered first when needed)."),
)
async def invoice_xlsx(
    invoice_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The stored Excel workbook of the invoice; rendered and stored first when needed."""
    return await _download("xlsx", invoice_id, request, actor, session, runtime)


@router.get("/invoices/{invoice_id}/download-url", response_model=Envelope[DownloadUrl])
async def invoice_download_url(
    invoice_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    format: Annotated[DocumentFormat, Query()] = "pdf",
) -> Response:
    """An expiring link to the stored document that works without credentials (S3 presigned or signed here)."""
    settings = runtime.settings
    link = await service.download_link(
        session,
        actor,
        invoice_id,
        format,
        service.store_for(runtime),
        secret_key=runtime.secret_key,
        public_base_url=settings.public_base_url,
        ttl_seconds=settings.download_url_ttl_seconds,
    )
    return envelope(DownloadUrl(url=link.url, expires_at=link.expires_at))


@router.get(
    "/downloads/{token}",
    response_class=StreamingResponse,
    responses=_file_responses("application/octet-stream", "The file the link was issued for."),
)
async def signed_download(token: str, request: Request, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Download through a link from `download-url`; the token is the credential (403 tampered or expired)."""
    document = await service.resolve_signed_download(session, secret_key=runtime.secret_key, token=token)
    return await _send(request, document, runtime)


def _temporary_path() -> Path:
    fd, name = tempfile.mkstemp(prefix="invoiceflow-export-", suffix=".xlsx")
    os.close(fd)
    return Path(name)


def _remove(path: Path) -> None:
    # Synchronous on purpose: an unlink takes microseconds, and an await here could be cancelled midway.
    path.unlink(missing_ok=True)


class _TemporaryFileResponse(FileResponse):
    """Sends the file, then deletes it, also when the client went away mid-download.

    A background task alone is skipped when sending fails, which would leave the export on disk.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            _remove(Path(self.path))
