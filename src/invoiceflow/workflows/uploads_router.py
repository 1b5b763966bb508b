"""Seed uploads over HTTP: `POST /documents` (202 at once), its status and workflow, and the rendered files.

The file is checked before anything is stored; the work (rendering, the email) runs in the upload's
workflow (workflows/uploads.py), never in the request.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import Field
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.responses import Response, StreamingResponse

from invoiceflow.auth.deps import ActorDep
from invoiceflow.core import idempotency
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.errors import Conflict, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from invoiceflow.core.runtime import Runtime, RuntimeDep, SessionDep
from invoiceflow.core.schemas import InputModel, OutputModel
from invoiceflow.core.storage import attachment_disposition
from invoiceflow.documents.models import Document
from invoiceflow.documents.service import (
    CONTENT_TYPES,
    DocumentFormat,
    download_filename,
    store_for,
    upload_rendering,
)
from invoiceflow.workflows import uploads
from invoiceflow.workflows.engine import Engine
from invoiceflow.workflows.models import Upload
from invoiceflow.workflows.router import ENGINE, _engine
from invoiceflow.workflows.views import workflow_view

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])

MULTIPART = "multipart/form-data"
# What a browser or curl may declare for a .json file; the content is checked either way.
_JSON_PART_TYPES = frozenset({"application/json", "text/json", "text/plain", "application/octet-stream"})
_DEFAULT_FILENAME = "invoice_data.json"
# Invoices are personal data: no shared cache keeps them, and the browser revalidates with the ETag.
_CACHE_CONTROL = "private, no-cache"
UploadStatus = Literal["queued", "processing", "ready", "failed"]

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary", "description": "a seed JSON invoice"}},
            }
        }
    },
}


class UploadError(OutputModel):
    code: str
    message: str
    step: str | None = None


class UploadedFileRead(OutputModel):
    id: uuid.UUID
    format: str
    content_type: str
    size_bytes: int
    sha256: str
    download_url: str


class UploadAccepted(OutputModel):
    id: uuid.UUID
    status: UploadStatus
    filename: str
    created_at: datetime
    status_url: str
    workflow_id: str


class UploadSummary(UploadAccepted):
    invoice_number: str | None
    size_bytes: int
    sha256: str
    error: UploadError | None
    updated_at: datetime
    completed_at: datetime | None


class UploadRead(UploadSummary):
    # "pdf" and "xlsx" once ready; empty before.
    documents: dict[str, UploadedFileRead]
    # The upload's workflow and each of its steps (workflows/views.py); null where workflows are not configured.
    workflow: dict[str, Any] | None


class UploadPage(OutputModel):
    items: list[UploadSummary]
    next_cursor: str | None
    limit: int


class UploadFilters(InputModel):
    status: UploadStatus | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


def _filename(raw: str | None) -> str:
    """The file's own name without any folder a client sent along, printable, at most 255 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:255] or _DEFAULT_FILENAME


async def _read_file(request: Request, max_bytes: int) -> tuple[str, bytes]:
    """The multipart field `file`: its name and bytes (415 for another body or a non-JSON part)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != MULTIPART:
        raise UnsupportedMediaType(
            "Upload the seed JSON file as multipart/form-data in the field `file`",
            details={"content_type": media_type, "accepted": [MULTIPART]},
        )
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed.field("file", "Upload the seed JSON file in the multipart field `file`")
        part_type = (upload.content_type or "").split(";")[0].strip().lower()
        if part_type and part_type not in _JSON_PART_TYPES and not part_type.endswith("+json"):
            raise UnsupportedMediaType(
                "The file must be a seed JSON invoice (application/json)",
                details={"content_type": part_type, "accepted": ["application/json"]},
            )
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"The file exceeds {max_bytes} bytes", details={"max_bytes": max_bytes})
        return _filename(upload.filename), data


def _status_url(request: Request, upload_id: uuid.UUID) -> str:
    return str(request.url_for("get_document_upload", upload_id=upload_id))


def _summary(request: Request, upload: Upload) -> dict[str, Any]:
    return {
        "id": upload.id,
        "status": upload.status,
        "filename": upload.filename,
        "created_at": upload.created_at,
        "status_url": _status_url(request, upload.id),
        "workflow_id": uploads.workflow_id_for(upload.id),
        "invoice_number": upload.invoice_number,
        "size_bytes": upload.size_bytes,
        "sha256": upload.sha256,
        "error": upload.error,
        "updated_at": upload.updated_at,
        "completed_at": upload.completed_at,
    }


def _engine_or_none(runtime: Runtime) -> Engine | None:
    engine = runtime.extras.get(ENGINE)
    return engine if isinstance(engine, Engine) else None


async def _workflow(engine: Engine, workflow_id: str) -> dict[str, Any] | None:
    """The upload's workflow with its steps; the steps' errors are part of their outputs, so those are loaded."""
    found = await engine.client.list_workflows_async(workflow_ids=[workflow_id], load_input=False, load_output=True)
    if not found:
        return None
    rows = await engine.client.list_workflow_steps_async(workflow_id, load_output=True)
    return workflow_view(found[0], rows)


@router.post(
    "",
    status_code=202,
    response_model=Envelope[UploadAccepted],
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={
        400: {"description": "The file is not well-formed JSON (MALFORMED_JSON)"},
        413: {"description": "The file or request is too large (PAYLOAD_TOO_LARGE)"},
        415: {"description": "Not multipart/form-data, or the part is not JSON"},
        422: {"description": "No `file` field, not a JSON object, not a valid seed invoice, or AMOUNTS_DISAGREE"},
        503: {"description": "Workflows are not configured in this process"},
    },
)
async def upload_document(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    key: Annotated[str | None, idempotency.HEADER] = None,
) -> Response:
    """Upload a seed JSON invoice (`file=@invoice_data.json`) to have it rendered as PDF and Excel.

    Answers 202 at once with the upload's id; `status_url` (`GET /documents/{id}`) shows its progress,
    and `GET /documents/{id}/download?format=pdf|xlsx` returns the files once it is `ready`. The uploader
    gets an email with a download link then. Nothing is stored when the file is refused.
    """
    engine = _engine(runtime)
    filename, data = await _read_file(request, runtime.settings.max_request_bytes)
    digest = hashlib.sha256(data).hexdigest()
    record = await idempotency.begin(
        session, actor.organization_id, key, request.url.path, {"sha256": digest, "filename": filename}
    )
    upload = await uploads.accept_upload(
        session,
        actor,
        client=engine.client,
        storage=store_for(runtime).storage,
        filename=filename,
        data=data,
        digest=digest,
    )
    out = UploadAccepted.model_validate(_summary(request, upload)).model_dump(mode="json")
    idempotency.complete(record, 202, out)
    return envelope(out, status_code=202, headers={"Location": out["status_url"]})


@router.get("", response_model=Envelope[UploadPage])
async def list_document_uploads(
    request: Request, actor: ActorDep, session: SessionDep, filters: Annotated[UploadFilters, Query()]
) -> Response:
    """The organisation's uploads, newest first (cursor-paginated)."""
    rows, cursor = await uploads.list_uploads(
        session, actor, status=filters.status, cursor=filters.cursor, limit=filters.limit
    )
    items = [UploadSummary.model_validate(_summary(request, row)) for row in rows]
    return envelope(UploadPage(items=items, next_cursor=cursor, limit=filters.limit))


@router.get("/{upload_id}", response_model=Envelope[UploadRead], name="get_document_upload")
async def get_document_upload(
    upload_id: uuid.UUID, request: Request, actor: ActorDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """An upload's status and error, its invoice number, its files once ready, and its workflow's steps."""
    upload = await uploads.get_upload(session, actor, upload_id)
    documents: dict[str, UploadedFileRead] = {}
    ids = [i for i in (upload.pdf_document_id, upload.xlsx_document_id) if i is not None]
    if upload.status == "ready" and ids:
        rows = (
            await session.execute(
                select(Document).where(Document.id.in_(ids), Document.organization_id == actor.organization_id)
            )
        ).scalars()
        for row in rows:
            url = request.url_for("download_document_upload", upload_id=upload.id).include_query_params(
                format=row.format
            )
            documents[row.format] = UploadedFileRead(
                id=row.id,
                format=row.format,
                content_type=row.content_type,
                size_bytes=row.size_bytes,
                sha256=row.sha256,
                download_url=str(url),
            )
    engine = _engine_or_none(runtime)
    workflow = await _workflow(engine, uploads.workflow_id_for(upload.id)) if engine else None
    return envelope(
        UploadRead.model_validate(_summary(request, upload) | {"documents": documents, "workflow": workflow})
    )


@router.get(
    "/{upload_id}/download",
    name="download_document_upload",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {ct: {"schema": {"type": "string", "format": "binary"}} for ct in CONTENT_TYPES.values()},
            "description": "The rendered file.",
        },
        409: {"description": "Not rendered (yet): DOCUMENT_NOT_READY, with the upload's status"},
    },
)
async def download_document_upload(
    upload_id: uuid.UUID,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    format: Annotated[DocumentFormat, Query()] = "pdf",
) -> Response:
    """The upload rendered as PDF or Excel; 409 DOCUMENT_NOT_READY until the upload is `ready`."""
    upload = await uploads.get_upload(session, actor, upload_id)
    document_id = upload.pdf_document_id if format == "pdf" else upload.xlsx_document_id
    if upload.status != "ready" or document_id is None:
        raise Conflict(
            "The document is not ready: see its status",
            code="DOCUMENT_NOT_READY",
            details={"status": upload.status, "status_url": _status_url(request, upload.id)},
        )
    document = await upload_rendering(
        session,
        actor.organization_id,
        document_id,
        filename=download_filename(upload.invoice_number, upload.id, format),
    )
    etag = f'"{document.sha256}"'
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": _CACHE_CONTROL})
    stream = await store_for(runtime).storage.open_stream(document.storage_key)
    headers = {
        "Content-Disposition": attachment_disposition(document.filename),
        "ETag": etag,
        "Cache-Control": _CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
    }
    return StreamingResponse(stream, media_type=document.content_type, headers=headers)
