"""The official rules as the gate of draft → sent: an invoice whose e-invoice would fail them is not issued.

EN 16931 applies to every invoice, so the CII rendering is always checked. Peppol BIS Billing 3.0 adds
rules of its own (electronic addresses, national identifier checks) that matter when the invoice travels
over Peppol, which it can only do when the client has an electronic address: then the UBL rendering is
checked against EN 16931 and Peppol as well. A fatal finding refuses the send with 422
`EINVOICE_INVALID`, the findings in the error's details, and leaves the invoice a draft.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.documents.service import invoice_document
from invoiceflow.einvoicing.cii import to_cii
from invoiceflow.einvoicing.errors import EInvoiceInvalid
from invoiceflow.einvoicing.ubl import to_ubl
from invoiceflow.einvoicing.validator import ValidationReport, get_validator
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.service import SendCheck


def _renderings(doc: InvoiceDocument) -> list[tuple[str, bytes]]:
    out = [("cii", to_cii(doc))]
    if doc.buyer.electronic_address:
        out.append(("ubl", to_ubl(doc)))
    return out


def refused(reports: list[tuple[str, ValidationReport]], what: str) -> EInvoiceInvalid:
    fatal: list[dict[str, Any]] = []
    layers: dict[str, Any] = {}
    for syntax, report in reports:
        fatal += [f.as_dict() | {"syntax": syntax} for f in report.findings if f.severity == "fatal"]
        layers[syntax] = report.as_dict()["layers"]
    return EInvoiceInvalid(
        f"{what} does not pass the official e-invoice rules ({len(fatal)} fatal findings); fix its data first",
        details={"findings": fatal, "layers": layers},
    )


async def check_before_send(rules_dir: Path, session: AsyncSession, invoice: Invoice) -> None:
    doc = await invoice_document(session, invoice)
    validator = get_validator(rules_dir)
    reports = [(syntax, await validator.validate_async(data)) for syntax, data in _renderings(doc)]
    if not all(report.valid for _, report in reports):
        raise refused(reports, "The invoice")


def send_check(rules_dir: Path) -> SendCheck:
    return partial(check_before_send, rules_dir)
