"""HTTP: validate an e-invoice against the official rules without storing anything."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.errors import UnsupportedMediaType, ValidationFailed
from invoiceflow.core.runtime import RuntimeDep, reads_only
from invoiceflow.einvoicing.validator import Validator

router = APIRouter(prefix="/api/v1/einvoices", tags=["e-invoicing"])

XML_MEDIA_TYPES = ("application/xml", "text/xml")
MULTIPART = "multipart/form-data"


class FindingRead(BaseModel):
    rule_id: str
    severity: Literal["fatal", "warning", "information"]
    message: str
    location: str
    layer: Literal["xsd", "en16931", "peppol"]
    line: int | None = None


class LayerRead(BaseModel):
    layer: Literal["xsd", "en16931", "peppol"]
    status: Literal["passed", "failed", "skipped"]
    reason: str | None = None


class ValidationReportRead(BaseModel):
    valid: bool
    document_type: Literal["Invoice", "CreditNote", "CrossIndustryInvoice"]
    syntax: Literal["ubl", "cii"]
    customization_id: str | None
    findings: list[FindingRead]
    layers: list[LayerRead]


_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/xml": {"schema": {"type": "string", "format": "binary"}},
        "text/xml": {"schema": {"type": "string", "format": "binary"}},
        MULTIPART: {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
    },
}


async def read_upload(request: Request, raw_types: tuple[str, ...] = XML_MEDIA_TYPES) -> bytes:
    """The uploaded document, from a raw body of one of `raw_types` or the multipart field `file`.

    Read by hand rather than through declared body parameters: FastAPI would answer a body of another
    type with a JSON-oriented validation error, and these routes' whole point is non-JSON bodies.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in raw_types:
        return await request.body()
    if media_type == MULTIPART:
        async with request.form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ValidationFailed.field("file", "Upload the document in the multipart field `file`")
            return await upload.read()
    raise UnsupportedMediaType(
        f"Send the document as {', '.join(raw_types)}, or as multipart/form-data with the field `file`",
        details={"content_type": media_type, "accepted": [*raw_types, MULTIPART]},
    )


@router.post(
    "/validate",
    response_model=Envelope[ValidationReportRead],
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={
        400: {"description": "Malformed or forbidden XML (XML_MALFORMED, XML_FORBIDDEN_CONSTRUCT, XML_TOO_DEEP, …)"},
        413: {"description": "Document too large"},
        415: {"description": "Neither XML nor multipart"},
        422: {"description": "Not a UBL Invoice/CreditNote or CII CrossIndustryInvoice (UNSUPPORTED_DOCUMENT)"},
        503: {"description": "Validation rules not configured (EINVOICE_RULES_MISSING)"},
    },
)
@reads_only
async def validate_einvoice(request: Request, actor: ActorDep, runtime: RuntimeDep) -> Response:
    """Check a UBL 2.1 or CII D16B document: XSD, then EN 16931, then Peppol BIS 3 when it claims Peppol.

    Answers 200 with the findings whether or not the document passes (`valid` says which): the request
    succeeded, the document may not have. Hostile or malformed XML is refused with a 4xx.
    """
    validator = Validator.from_settings(runtime.settings)
    data = await read_upload(request)
    report = await validator.validate_async(data, max_bytes=runtime.settings.max_request_bytes)
    return envelope(report.as_dict())
