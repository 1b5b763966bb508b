"""HTTP: import an issued invoice from a UBL, CII or seed-JSON document, and see how its import went."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep
from invoiceflow.core import idempotency
from invoiceflow.core.api import envelope
from invoiceflow.core.runtime import RuntimeDep, SessionDep
from invoiceflow.core.storage import Storage
from invoiceflow.documents.models import ImportedDocument
from invoiceflow.documents.snapshot import document_from_json
from invoiceflow.einvoicing.importing import import_document, import_json, record_json
from invoiceflow.einvoicing.router import MULTIPART, XML_MEDIA_TYPES, read_upload
from invoiceflow.einvoicing.validator import get_validator
from invoiceflow.invoices.service import get_invoice

router = APIRouter(prefix="/api/v1", tags=["e-invoicing"])

_IMPORT_TYPES = (*XML_MEDIA_TYPES, "application/json")
_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/xml": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {"type": "object"}},
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
    },
}


@router.post(
    "/invoices/import",
    status_code=201,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={
        400: {"description": "Malformed or hostile XML/JSON (XML_MALFORMED, XML_FORBIDDEN_CONSTRUCT, …)"},
        409: {"description": "The supplier's invoice was imported already (DUPLICATE_INVOICE) or the number is used"},
        413: {"description": "Document too large"},
        415: {"description": "Neither XML, JSON nor multipart"},
        422: {"description": "Fails the XSD (or any fatal rule with strict=true), cannot be mapped, or bad JSON"},
    },
)
async def import_invoice(
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    strict: Annotated[bool, Query(description="Refuse documents with any fatal finding, not only XSD errors")] = False,
    key: Annotated[str | None, idempotency.HEADER] = None,
) -> Response:
    """Import an issued invoice: UBL 2.1 Invoice or CreditNote, CII D16B, or the seed JSON invoice shape.

    The document's own amounts are kept; our recomputation is compared with them and any difference is
    listed in `import.differences`. The official rules run when configured: an XSD failure refuses the
    document; other fatal findings are reported in `import.validation` (or refuse it with `strict=true`).
    The buyer is matched to a client by VAT id, then electronic address, or becomes a new client.
    """
    data = await read_upload(request, _IMPORT_TYPES)
    record = await idempotency.begin(
        session,
        actor.organization_id,
        key,
        request.url.path,
        {"sha256": hashlib.sha256(data).hexdigest(), "strict": strict},
    )
    rules = runtime.settings.einvoice_rules_dir
    storage: Storage = runtime.extras["storage"]
    result = await import_document(
        session,
        actor,
        data,
        storage=storage,
        validator=get_validator(rules) if rules is not None else None,
        strict=strict,
    )
    out = import_json(result)
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


@router.get("/invoices/{invoice_id}/import")
async def invoice_import(invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    """How an invoice arrived: for an imported one its syntax, validation findings, amount differences and the
    document's own totals; `imported: false` for one made here."""
    invoice = await get_invoice(session, actor, invoice_id)
    row = (
        await session.execute(select(ImportedDocument).where(ImportedDocument.invoice_id == invoice.id))
    ).scalar_one_or_none()
    if row is None:
        # Made here (API, order, credit note): there is no received document to describe.
        return envelope({"imported": False, "invoice_id": str(invoice.id)})
    return envelope(record_json(row, document_from_json(row.document)))
