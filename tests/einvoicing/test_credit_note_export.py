"""A credit note's e-invoice and PDF: a UBL CreditNote that names the credited invoice (BG-3) and passes the
official rules, and a PDF titled as a credit note with the reference."""

from __future__ import annotations

from io import BytesIO

from fastapi.testclient import TestClient
from lxml import etree
from pypdf import PdfReader

from invoiceflow.einvoicing.validator import Validator
from tests.einvoicing.test_export_api import BUYER, SELLER
from tests.factories import create_client, create_invoice, register
from tests.invoices.test_credit_notes import created, credit, set_status

UBL_NS = {
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}


def test_the_credit_notes_ubl_and_pdf_name_the_credited_invoice(
    einvoice_client: TestClient, validator: Validator
) -> None:
    http = einvoice_client
    account = register(http)
    assert http.patch("/api/v1/organization", json=SELLER, headers=account.headers).status_code == 200
    buyer = create_client(http, account, **{**BUYER, "language": "en"})
    items = [
        {"description": "Consulting", "quantity": "3", "unit_code": "HUR", "unit_price": "125.00", "vat_rate": "21"},
        {"description": "Books", "quantity": "2", "unit_price": "19.99", "vat_rate": "9"},
    ]
    invoice = create_invoice(http, account, buyer["id"], items=items, buyer_reference="PO-778")
    invoice = set_status(http, account, invoice["id"], "sent")
    note = created(
        credit(http, account, invoice["id"], {"lines": [{"position": 1, "quantity": "1.5"}, {"position": 2}]})
    )

    r = http.get(f"/api/v1/invoices/{note['id']}/ubl", headers=account.headers)
    assert r.status_code == 200, r.text
    report = validator.validate(r.content)
    assert report.valid, [f.as_dict() for f in report.findings]
    assert {"xsd", "en16931", "peppol"} <= set(report.layers_run)
    root = etree.fromstring(r.content)
    assert etree.QName(root).localname == "CreditNote"
    assert root.findtext("cbc:ID", namespaces=UBL_NS) == note["invoice_number"]
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=UBL_NS) == "381"
    reference = "cac:BillingReference/cac:InvoiceDocumentReference/"
    assert root.findtext(reference + "cbc:ID", namespaces=UBL_NS) == invoice["invoice_number"]
    assert root.findtext(reference + "cbc:IssueDate", namespaces=UBL_NS) == invoice["issue_date"]
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=UBL_NS) == note["total_amount"]
    assert len(root.findall("cac:CreditNoteLine", namespaces=UBL_NS)) == 2

    r = http.get(f"/api/v1/invoices/{note['id']}/pdf", headers=account.headers)
    assert r.status_code == 200, r.text
    text = "\n".join(page.extract_text() for page in PdfReader(BytesIO(r.content)).pages)
    assert "Credit note" in text
    assert invoice["invoice_number"] in text
    assert note["invoice_number"] in text
    assert note["total_amount"].replace(".", "") in text.replace(",", "").replace(".", "")
