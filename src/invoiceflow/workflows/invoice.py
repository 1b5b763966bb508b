"""The invoice workflow: what happens after an invoice is issued, each step durable and retried.

    documents (the invoice is issued; its PDF, and UBL and CII when the client has an electronic address,
               rendered and stored)
             → email (the PDF to the client) → publish (the InvoiceProcessed event; webhooks and RabbitMQ
               pick events up from the log)

The invoice itself is persisted by the request that issued it, in the same transaction that enqueued
this workflow (workflow id `invoice-{id}`), so the workflow exists if and only if the invoice was issued.
Steps are at-least-once and written to be idempotent: documents are stored under content-derived keys,
the email has one delivery row per invoice and purpose (a stable Message-ID), and events carry ids
derived from the workflow id.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any, Final, ParamSpec, TypeVar

from dbos import DBOS
from sqlalchemy.exc import IntegrityError

from invoiceflow.core import metrics
from invoiceflow.core.context import system_actor
from invoiceflow.core.failpoints import failpoint
from invoiceflow.core.records import record_event
from invoiceflow.documents.service import ensure_rendered, invoice_document, store_file
from invoiceflow.documents.snapshot import document_from_json, document_to_json
from invoiceflow.einvoicing.cii import to_cii
from invoiceflow.einvoicing.ubl import to_ubl
from invoiceflow.invoices import service as invoices
from invoiceflow.notifications.render import Attachment
from invoiceflow.notifications.service import invoice_issued_email, workflow_failed_slack
from invoiceflow.workflows.deps import current
from invoiceflow.workflows.retry import RetryPolicy, StepFailed, durable_step, with_retries

WORKFLOW: Final = "invoice_workflow"
QUEUE: Final = "invoices"
# The steps in order, as GET /invoices/{id}/workflow lists them.
STEPS: Final = ("documents", "email", "publish")
POLICIES: Final = {
    "documents": RetryPolicy(attempts=5, first_delay=2),
    "email": RetryPolicy(attempts=8, first_delay=30, max_delay=3600),
    "publish": RetryPolicy(attempts=5, first_delay=1),
}
EINVOICE_VERSION: Final = "einvoice-1"
_EVENT_NAMESPACE: Final = uuid.UUID("6f0f4c52-2a55-4d47-9d3a-8f1f3f1c6a01")

P = ParamSpec("P")
R = TypeVar("R")


def workflow_id_for(invoice_id: uuid.UUID | str) -> str:
    return f"invoice-{invoice_id}"


@durable_step(WORKFLOW, "documents")
async def documents(organization_id: str, invoice_id: str) -> dict[str, Any]:
    """Check that the invoice is issued, then render and store its PDF (and UBL + CII for a client with an
    electronic address), once. Returns what the next steps need, the document model among it, so the
    email step does not load the invoice again. A missing or draft invoice fails at once (no retries).

    (Validation is part of this step rather than a step of its own: it is one read of the rows this step
    loads anyway, and a step costs DBOS a checkpoint read and write.)"""
    deps = current()
    actor = system_actor(uuid.UUID(organization_id))
    async with deps.db.read_sessions() as session:
        invoice = await invoices.get_invoice(session, actor, uuid.UUID(invoice_id))
        if invoice.status == "draft" or not invoice.invoice_number:
            raise StepFailed("INVOICE_NOT_ISSUED", "The invoice is still a draft", "no")
        doc = await invoice_document(session, invoice)
        pdf = await ensure_rendered(session, invoice, doc, "pdf", deps.store)
    stored: dict[str, Any] = {
        "number": invoice.invoice_number,
        "email": "yes" if doc.buyer.email else "no",
        "pdf": pdf.sha256,
        "pdf_key": pdf.storage_key,
        "pdf_filename": pdf.filename,
    }
    if doc.buyer.electronic_address:
        ubl, cii = await asyncio.to_thread(lambda: (to_ubl(doc), to_cii(doc)))
        for fmt, data in (("ubl", ubl), ("cii", cii)):
            row = await store_file(
                deps.store, invoice, doc, fmt, data, content_type="application/xml", version=EINVOICE_VERSION
            )
            stored[fmt] = row.sha256
    stored["document"] = document_to_json(doc)
    failpoint("invoice.documents")
    return stored


@durable_step(WORKFLOW, "email")
async def email(organization_id: str, invoice_id: str, stored: dict[str, Any]) -> dict[str, str]:
    """The stored PDF (the documents step's) to the client: one delivery per invoice, a stable Message-ID."""
    deps = current()
    content = await deps.store.storage.get(stored["pdf_key"])
    pdf = Attachment(filename=stored["pdf_filename"], content=content, content_type="application/pdf")
    result = await invoice_issued_email(
        deps.notifier,
        deps.store,
        organization_id=uuid.UUID(organization_id),
        invoice_id=uuid.UUID(invoice_id),
        doc=document_from_json(stored["document"]),
        pdf=pdf,
    )
    failpoint("invoice.email")
    return {"delivery_id": str(result.id), "message_id": result.message_id or "", "status": result.status}


@durable_step(WORKFLOW, "publish")
async def publish(organization_id: str, invoice_id: str, workflow_id: str, number: str) -> dict[str, str]:
    """Record InvoiceProcessed once (its id derives from the workflow id) and wake the event dispatcher."""
    deps = current()
    event_id = uuid.uuid5(_EVENT_NAMESPACE, f"{workflow_id}:InvoiceProcessed")
    try:
        async with deps.db.write_sessions() as session:
            record_event(
                session,
                organization_id=uuid.UUID(organization_id),
                type="InvoiceProcessed",
                resource_type="invoice",
                resource_id=invoice_id,
                payload={"invoice_id": invoice_id, "invoice_number": number, "workflow_id": workflow_id},
                event_id=event_id,
            )
            await session.commit()
    except IntegrityError:
        pass  # recorded by an earlier attempt whose checkpoint was lost
    failpoint("invoice.publish")
    deps.events_recorded.set()
    return {"event_id": str(event_id)}


@durable_step(WORKFLOW, "alert")
async def alert(organization_id: str, invoice_id: str, workflow_id: str, step: str, error: str) -> str:
    """Tell the team on Slack (when configured) that a workflow gave up; once per workflow."""
    result = await workflow_failed_slack(
        current().notifier,
        organization_id=uuid.UUID(organization_id),
        workflow_id=workflow_id,
        step=step,
        error=error,
        resource_type="invoice",
        resource_id=invoice_id,
    )
    return "sent" if result is not None else "not configured"


@DBOS.workflow(name=WORKFLOW)
async def invoice_workflow(organization_id: str, invoice_id: str) -> dict[str, str]:
    workflow_id = DBOS.workflow_id or workflow_id_for(invoice_id)
    step = "documents"
    try:
        stored = await with_retries(documents, POLICIES["documents"], organization_id, invoice_id)
        outcome = {"number": stored["number"]} | {
            f"{k}_sha256": stored[k] for k in ("pdf", "ubl", "cii") if k in stored
        }
        if stored["email"] == "yes":
            step = "email"
            sent = await with_retries(email, POLICIES["email"], organization_id, invoice_id, stored)
            outcome["message_id"] = sent["message_id"]
        step = "publish"
        await with_retries(publish, POLICIES["publish"], organization_id, invoice_id, workflow_id, stored["number"])
    except StepFailed as exc:
        metrics.workflow_runs_total.labels(WORKFLOW, "error").inc()
        with contextlib.suppress(StepFailed):  # the alert is best effort; the failure stands either way
            await alert(organization_id, invoice_id, workflow_id, step, str(exc))
        raise
    metrics.workflow_runs_total.labels(WORKFLOW, "success").inc()
    return outcome
