"""An invoice as a structured e-invoice: UBL 2.1 (Peppol BIS Billing 3.0), UN/CEFACT CII D16B, or Factur-X
(the PDF as PDF/A-3b with the CII embedded).

The XML is generated from the same document model as the PDF and checked with the official rules before
it leaves: a document with a fatal finding is never handed out as an e-invoice; the 422 lists what is
wrong. Without configured rules the XML is served unchecked and says so in `X-EInvoice-Validation`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from fastapi import APIRouter
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep
from invoiceflow.core.db import utcnow
from invoiceflow.core.runtime import Runtime, RuntimeDep, SessionDep
from invoiceflow.core.storage import attachment_disposition
from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.documents.service import load_document
from invoiceflow.einvoicing.cii import to_cii
from invoiceflow.einvoicing.errors import EInvoiceInvalid
from invoiceflow.einvoicing.facturx import render_facturx
from invoiceflow.einvoicing.ubl import to_ubl
from invoiceflow.einvoicing.validator import get_validator

router = APIRouter(prefix="/api/v1", tags=["e-invoicing"])
VALIDATION_HEADER = "X-EInvoice-Validation"


async def _checked(data: bytes, runtime: Runtime, *, facturx: bool = False) -> str:
    """Validate the XML when rules are configured (422 `EINVOICE_INVALID` on a fatal finding); the
    `X-EInvoice-Validation` value."""
    rules_dir = runtime.settings.einvoice_rules_dir
    if rules_dir is None:
        return "skipped: INVOICEFLOW_EINVOICE_RULES_DIR is not set"
    report = await get_validator(rules_dir).validate_async(data, facturx=facturx)
    if not report.valid:
        fatal = [f.as_dict() for f in report.findings if f.severity == "fatal"]
        raise EInvoiceInvalid(
            f"The invoice does not pass the official rules ({len(fatal)} fatal findings); fix its data first",
            details={"findings": fatal, "layers": report.as_dict()["layers"]},
        )
    return "passed"


async def _export(
    invoice_id: uuid.UUID,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    generate: Callable[[InvoiceDocument], bytes],
    suffix: str,
) -> Response:
    doc = await load_document(session, actor, invoice_id)
    data = generate(doc)
    status = await _checked(data, runtime)
    filename = f"{doc.number or invoice_id}-{suffix}.xml"
    headers = {"Content-Disposition": attachment_disposition(filename), VALIDATION_HEADER: status}
    return Response(data, media_type="application/xml", headers=headers)


@router.get("/invoices/{invoice_id}/ubl", response_class=Response)
async def invoice_ubl(invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """UBL 2.1 Invoice (CreditNote for credit notes), Peppol BIS Billing 3.0."""
    return await _export(invoice_id, actor, session, runtime, to_ubl, "ubl")


@router.get("/invoices/{invoice_id}/cii", response_class=Response)
async def invoice_cii(invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """UN/CEFACT CII D16B CrossIndustryInvoice, EN 16931 profile."""
    return await _export(invoice_id, actor, session, runtime, to_cii, "cii")


@router.get("/invoices/{invoice_id}/facturx", response_class=Response)
async def invoice_facturx(invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Factur-X 1.0, EN 16931 profile: the invoice PDF as PDF/A-3b with the CII XML embedded as factur-x.xml.

    The CII is checked against EN 16931 and the Factur-X EN16931 profile rules before anything is drawn.
    """
    doc = await load_document(session, actor, invoice_id)
    xml = to_cii(doc)
    status = await _checked(xml, runtime, facturx=True)
    # Drawing and embedding take about 20 ms of CPU for a one-page invoice: off the event loop.
    pdf = await asyncio.to_thread(
        render_facturx, doc, xml, created_at=utcnow(), page_size=runtime.settings.pdf_page_size
    )
    filename = f"{doc.number or invoice_id}-facturx.pdf"
    headers = {"Content-Disposition": attachment_disposition(filename), VALIDATION_HEADER: status}
    return Response(pdf, media_type="application/pdf", headers=headers)
