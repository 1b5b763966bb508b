"""Seed uploads: a seed JSON invoice uploaded through `POST /documents`, rendered to PDF and Excel in the
background, the uploader told when the files are ready.

    request: check the file (well-formed JSON, the seed schema, totals that add up) → store it → `uploads`
             row (queued) + the workflow's start, in one transaction → 202
    workflow `upload-{id}` (queue `documents`): parse → render (PDF and Excel, `documents` rows of kind
             "upload", no invoice) → notify (document_ready email with a signed link, when the uploader has
             an email) → finish (ready; the UploadProcessed event)

An upload makes no invoice and no client: the seed is mapped to the document model exactly as
`POST /invoices/import` maps it (einvoicing.importing), and the parse step checkpoints that model as its
lossless snapshot (documents.snapshot), so every later attempt renders the very document that was parsed.
Steps are at-least-once and idempotent: rendering keys derive from the upload and its content, the email
has one delivery per upload, the event an id derived from the workflow id. A step that fails for good
marks the upload failed with its error before the workflow ends in ERROR (a user may retry it).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final, ParamSpec, TypeVar

import orjson
from dbos import DBOS, DBOSClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.auth.models import User
from invoiceflow.clients.models import Client
from invoiceflow.core import metrics
from invoiceflow.core.context import Actor
from invoiceflow.core.db import new_id, utcnow
from invoiceflow.core.errors import NotFound, ValidationFailed
from invoiceflow.core.failpoints import failpoint
from invoiceflow.core.listing import page_by_created_at
from invoiceflow.core.models import Organization
from invoiceflow.core.records import record_audit, record_event
from invoiceflow.core.storage import Storage, validate_key
from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.documents.service import link_to, store_upload_rendering, upload_rendering
from invoiceflow.documents.snapshot import document_from_json, document_to_json

# The importer's own seed parsing and mapping, so an upload accepts exactly what POST /invoices/import
# accepts and renders the same document (see the module docstring).
from invoiceflow.einvoicing.importing import SeedParty, _parse_seed, _seed_document
from invoiceflow.notifications.service import document_ready_email, workflow_failed_slack
from invoiceflow.workflows.deps import current
from invoiceflow.workflows.engine import enqueue_in_session
from invoiceflow.workflows.models import Upload
from invoiceflow.workflows.retry import RetryPolicy, StepFailed, durable_step, with_retries

log = logging.getLogger("invoiceflow.workflows")

WORKFLOW: Final = "upload_workflow"
QUEUE: Final = "documents"
# The steps in order, as GET /documents/{id} lists them.
STEPS: Final = ("parse", "render", "notify", "finish")
POLICIES: Final = {
    "parse": RetryPolicy(attempts=3, first_delay=1),
    "render": RetryPolicy(attempts=3, first_delay=1),
    "notify": RetryPolicy(attempts=6, first_delay=10, max_delay=600),
    "finish": RetryPolicy(attempts=5, first_delay=1),
    "upload_failed": RetryPolicy(attempts=5, first_delay=1),
}
FORMATS: Final = ("pdf", "xlsx")
_BOM: Final = b"\xef\xbb\xbf"
_EVENT_NAMESPACE: Final = uuid.UUID("3f9d0c1e-7b2a-4c55-8e61-5a0d2b7c9e14")

P = ParamSpec("P")
R = TypeVar("R")


def workflow_id_for(upload_id: uuid.UUID | str) -> str:
    return f"upload-{upload_id}"


def source_key(organization_id: uuid.UUID, upload_id: uuid.UUID) -> str:
    return validate_key(f"orgs/{organization_id}/uploads/{upload_id}/source.json")


# --- the seed ------------------------------------------------------------------------------------------


async def seed_document(session: AsyncSession, organization_id: uuid.UUID, data: bytes) -> InvoiceDocument:
    """The document model of a seed JSON file, as the organisation would issue it; creates nothing.

    Refuses what `POST /invoices/import` refuses: malformed JSON (400 MALFORMED_JSON), anything but an
    object or a seed that breaks the schema (422), a `client_id` that is not one of the organisation's
    live clients (422), stated totals that disagree with the lines (422 AMOUNTS_DISAGREE).
    """
    seed = _parse_seed(data.removeprefix(_BOM))
    org = (await session.execute(select(Organization).where(Organization.id == organization_id))).scalar_one()
    buyer: Client | SeedParty
    if seed.client_id is not None:
        client = (
            await session.execute(
                select(Client).where(
                    Client.id == seed.client_id,
                    Client.organization_id == organization_id,
                    Client.deleted_at.is_(None),
                )
            )
        ).scalar_one_or_none()
        if client is None:
            raise ValidationFailed.field("client_id", "client not found", type_="not_found")
        buyer = client
    elif seed.client is not None:
        buyer = seed.client
    else:
        raise ValidationFailed.field("client", "give the client inline (`client`) or by `client_id`")
    return _seed_document(seed, buyer, org)


# --- the request side ----------------------------------------------------------------------------------


async def accept_upload(
    session: AsyncSession,
    actor: Actor,
    *,
    client: DBOSClient,
    storage: Storage,
    filename: str,
    data: bytes,
    digest: str,
) -> Upload:
    """Check the file, store it, and record the upload with its workflow's start (both commit or neither).

    A refused file leaves nothing behind: every check runs before the file is stored.
    """
    doc = await seed_document(session, actor.organization_id, data)
    upload_id = new_id()
    key = source_key(actor.organization_id, upload_id)
    await storage.put(key, data, content_type="application/json")
    upload = Upload(
        id=upload_id,
        organization_id=actor.organization_id,
        user_id=actor.user_id,
        filename=filename,
        status="queued",
        source_key=key,
        sha256=digest,
        size_bytes=len(data),
        invoice_number=doc.number,
        created_at=utcnow(),
    )
    upload.updated_at = upload.created_at
    session.add(upload)
    record_audit(
        session,
        actor,
        action="document.upload",
        resource_type="upload",
        resource_id=upload_id,
        details={"filename": filename, "sha256": digest, "size_bytes": len(data), "invoice_number": doc.number},
    )
    await session.flush()
    await enqueue_in_session(
        session,
        client,
        workflow=WORKFLOW,
        workflow_id=workflow_id_for(upload_id),
        queue=QUEUE,
        args=(str(actor.organization_id), str(upload_id)),
    )
    return upload


async def get_upload(session: AsyncSession, actor: Actor, upload_id: uuid.UUID) -> Upload:
    """One of the actor's organisation's uploads; anyone else's is not found."""
    upload = (
        await session.execute(
            select(Upload).where(Upload.id == upload_id, Upload.organization_id == actor.organization_id)
        )
    ).scalar_one_or_none()
    if upload is None:
        raise NotFound("Document not found", code="DOCUMENT_NOT_FOUND", details={"id": str(upload_id)})
    return upload


async def list_uploads(
    session: AsyncSession, actor: Actor, *, status: str | None, cursor: str | None, limit: int
) -> tuple[list[Upload], str | None]:
    """The organisation's uploads, newest first, a keyset page at a time."""
    stmt = select(Upload).where(Upload.organization_id == actor.organization_id)
    if status is not None:
        stmt = stmt.where(Upload.status == status)
    return await page_by_created_at(session, stmt, Upload, cursor=cursor, limit=limit)


# --- the workflow --------------------------------------------------------------------------------------


async def _set(organization_id: str, upload_id: str, **values: Any) -> None:
    async with current().db.write_sessions() as session:
        await session.execute(
            update(Upload)
            .where(Upload.id == uuid.UUID(upload_id), Upload.organization_id == uuid.UUID(organization_id))
            .values(updated_at=utcnow(), **values)
        )
        await session.commit()


@durable_step(WORKFLOW, "parse")
async def parse(organization_id: str, upload_id: str) -> dict[str, str]:
    """The stored file, checked again and mapped: its document snapshot and who to tell."""
    deps = current()
    async with deps.db.read_sessions() as session:
        row = (
            await session.execute(
                select(Upload.source_key, User.email)
                .outerjoin(User, User.id == Upload.user_id)
                .where(Upload.id == uuid.UUID(upload_id), Upload.organization_id == uuid.UUID(organization_id))
            )
        ).one_or_none()
        if row is None:
            raise StepFailed("DOCUMENT_NOT_FOUND", "The upload no longer exists", "no")
        data = await deps.store.storage.get(row.source_key)
        doc = await seed_document(session, uuid.UUID(organization_id), data)
    await _set(organization_id, upload_id, status="processing", invoice_number=doc.number, error=None)
    failpoint("upload.parse")
    return {
        "number": doc.number,
        "email": "yes" if row.email else "no",
        "document": orjson.dumps(document_to_json(doc)).decode(),
    }


@durable_step(WORKFLOW, "render")
async def render(organization_id: str, upload_id: str, document: str) -> dict[str, str]:
    """PDF and Excel of the parsed document, stored as documents of kind "upload" and named on the upload."""
    deps = current()
    doc = document_from_json(orjson.loads(document))
    stored = {
        fmt: await store_upload_rendering(
            deps.store,
            organization_id=uuid.UUID(organization_id),
            upload_id=uuid.UUID(upload_id),
            doc=doc,
            fmt=fmt,
        )
        for fmt in FORMATS
    }
    await _set(
        organization_id,
        upload_id,
        # A retried workflow (POST /workflows/{id}/retry) may resume here: it is processing again.
        status="processing",
        error=None,
        completed_at=None,
        pdf_document_id=stored["pdf"].id,
        xlsx_document_id=stored["xlsx"].id,
    )
    failpoint("upload.render")
    return {
        "pdf_document_id": str(stored["pdf"].id),
        "xlsx_document_id": str(stored["xlsx"].id),
        "pdf_sha256": stored["pdf"].sha256,
        "xlsx_sha256": stored["xlsx"].sha256,
    }


@durable_step(WORKFLOW, "notify")
async def notify(organization_id: str, upload_id: str, pdf_document_id: str) -> dict[str, str]:
    """One document_ready email to the uploader (one delivery per upload), with a signed link to the PDF."""
    deps = current()
    org_id = uuid.UUID(organization_id)
    async with deps.db.read_sessions() as session:
        row = (
            await session.execute(
                select(Upload.filename, Upload.invoice_number, User.email, User.name, Organization.name.label("org"))
                .join(User, User.id == Upload.user_id)
                .join(Organization, Organization.id == Upload.organization_id)
                .where(Upload.id == uuid.UUID(upload_id), Upload.organization_id == org_id)
            )
        ).one_or_none()
        if row is None:  # the uploader's account was removed since: nobody to tell
            return {"status": "skipped"}
        pdf = await upload_rendering(
            session, org_id, uuid.UUID(pdf_document_id), filename=f"{row.invoice_number or upload_id}.pdf"
        )
    settings = deps.settings
    link = await link_to(
        pdf,
        deps.store,
        secret_key=settings.resolved_secret_key(),
        public_base_url=settings.public_base_url,
        ttl_seconds=settings.download_url_ttl_seconds,
    )
    result = await document_ready_email(
        deps.notifier,
        organization_id=org_id,
        to=row.email,
        document_id=upload_id,
        filename=pdf.filename,
        download_url=link.url,
        expires_at=link.expires_at,
        recipient_name=row.name,
        organization_name=row.org,
    )
    failpoint("upload.notify")
    return {"delivery_id": str(result.id), "message_id": result.message_id or "", "status": result.status}


@durable_step(WORKFLOW, "finish")
async def finish(
    organization_id: str, upload_id: str, workflow_id: str, number: str, pdf_id: str, xlsx_id: str
) -> dict[str, str]:
    """Ready, and UploadProcessed recorded once (its id derives from the workflow id), in one commit."""
    deps = current()
    event_id = uuid.uuid5(_EVENT_NAMESPACE, f"{workflow_id}:UploadProcessed")
    now = utcnow()
    try:
        async with deps.db.write_sessions() as session:
            await session.execute(
                update(Upload)
                .where(Upload.id == uuid.UUID(upload_id), Upload.organization_id == uuid.UUID(organization_id))
                .values(status="ready", error=None, completed_at=now, updated_at=now)
            )
            record_event(
                session,
                organization_id=uuid.UUID(organization_id),
                type="UploadProcessed",
                resource_type="upload",
                resource_id=upload_id,
                payload={
                    "upload_id": upload_id,
                    "invoice_number": number,
                    "pdf_document_id": pdf_id,
                    "xlsx_document_id": xlsx_id,
                    "workflow_id": workflow_id,
                },
                event_id=event_id,
            )
            await session.commit()
    except IntegrityError:
        pass  # recorded, with the status, by an earlier attempt whose checkpoint was lost
    failpoint("upload.finish")
    deps.events_recorded.set()
    return {"event_id": str(event_id)}


@durable_step(WORKFLOW, "upload_failed")
async def upload_failed(
    organization_id: str, upload_id: str, workflow_id: str, step: str, code: str, message: str
) -> dict[str, str]:
    """The upload marked failed with the step's error (what GET /documents/{id} shows), and Slack told."""
    now = utcnow()
    await _set(
        organization_id,
        upload_id,
        status="failed",
        error={"code": code, "message": message, "step": step},
        completed_at=now,
    )
    deps = current()
    try:
        await workflow_failed_slack(
            deps.notifier,
            organization_id=uuid.UUID(organization_id),
            workflow_id=workflow_id,
            step=step,
            error=f"{code}: {message}",
            resource_type="upload",
            resource_id=upload_id,
        )
    except Exception:  # the failure is recorded on the upload; Slack has its own delivery record
        log.warning("could not post the failure of %s to Slack", workflow_id, exc_info=True)
    return {"status": "failed"}


@DBOS.workflow(name=WORKFLOW)
async def upload_workflow(organization_id: str, upload_id: str) -> dict[str, str]:
    workflow_id = DBOS.workflow_id or workflow_id_for(upload_id)
    step = "parse"
    try:
        parsed = await with_retries(parse, POLICIES["parse"], organization_id, upload_id)
        step = "render"
        rendered = await with_retries(render, POLICIES["render"], organization_id, upload_id, parsed["document"])
        outcome = {"number": parsed["number"], **rendered}
        if parsed["email"] == "yes":
            step = "notify"
            sent = await with_retries(
                notify, POLICIES["notify"], organization_id, upload_id, rendered["pdf_document_id"]
            )
            outcome["message_id"] = sent.get("message_id", "")
        step = "finish"
        await with_retries(
            finish,
            POLICIES["finish"],
            organization_id,
            upload_id,
            workflow_id,
            parsed["number"],
            rendered["pdf_document_id"],
            rendered["xlsx_document_id"],
        )
    except StepFailed as exc:
        metrics.workflow_runs_total.labels(WORKFLOW, "error").inc()
        await with_retries(
            upload_failed,
            POLICIES["upload_failed"],
            organization_id,
            upload_id,
            workflow_id,
            step,
            exc.code,
            exc.message,
        )
        raise
    metrics.workflow_runs_total.labels(WORKFLOW, "success").inc()
    return outcome
