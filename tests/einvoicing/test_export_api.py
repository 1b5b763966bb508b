"""GET /invoices/{id}/ubl and /cii: generated from the invoice, checked with the official rules before
they are handed out."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from invoiceflow.einvoicing.validator import Validator
from tests.factories import Account, assert_error, create_client, create_invoice, register

SELLER = {
    "legal_name": "Acme Consulting BV",
    "address_line1": "Keizersgracht 1",
    "city": "Amsterdam",
    "postal_code": "1015 CJ",
    "country": "NL",
    "vat_id": "NL123456789B01",
    "company_id": "12345678",
    "email": "billing@acme.example",
    "iban": "NL91ABNA0417164300",
    "bic": "ABNANL2A",
    "electronic_address_scheme": "0106",
    "electronic_address": "12345678",
}
BUYER = {
    "name": "Brasserie du Parc SRL",
    "email": "compta@parc.example",
    "address": {"line1": "Rue Royale 77", "postal_code": "1000", "city": "Bruxelles", "country": "BE"},
    "vat_id": "BE0123456749",
    "electronic_address_scheme": "0208",
    "electronic_address": "0123456749",
    "language": "fr",
}
ITEMS = [
    {"description": "Consulting", "quantity": "3", "unit_code": "HUR", "unit_price": "125.00", "vat_rate": "21"},
    {"description": "Books", "quantity": "2", "unit_price": "19.99", "vat_rate": "9"},
]


@pytest.fixture
def issued(einvoice_client: TestClient) -> tuple[Account, dict[str, Any]]:
    account = register(einvoice_client)
    r = einvoice_client.patch("/api/v1/organization", json=SELLER, headers=account.headers)
    assert r.status_code == 200, r.text
    buyer = create_client(einvoice_client, account, **BUYER)
    invoice = create_invoice(einvoice_client, account, buyer["id"], items=ITEMS, buyer_reference="PO-778")
    return account, invoice


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_the_e_invoice_passes_the_official_rules(
    einvoice_client: TestClient, issued: Any, validator: Validator, fmt: str
) -> None:
    account, invoice = issued
    r = einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/{fmt}", headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    assert r.headers["x-einvoice-validation"] == "passed"
    assert f"{invoice['invoice_number']}-{fmt}.xml" in r.headers["content-disposition"]
    report = validator.validate(r.content)
    assert report.valid, [f.as_dict() for f in report.findings]
    expected_layers = {"xsd", "en16931", "peppol"} if fmt == "ubl" else {"xsd", "en16931"}
    assert expected_layers <= set(report.layers_run)
    # The totals in the XML are the API's, to the cent.
    text = r.content.decode()
    for amount in (invoice["net_amount"], invoice["vat_amount"], invoice["total_amount"]):
        assert f">{amount}<" in text


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_an_invoice_that_breaks_the_rules_is_refused_with_the_findings(einvoice_client: TestClient, fmt: str) -> None:
    """A seller profile without address, VAT id or electronic address cannot make a valid e-invoice."""
    account = register(einvoice_client)
    buyer = create_client(einvoice_client, account)
    invoice = create_invoice(einvoice_client, account, buyer["id"])
    r = einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/{fmt}", headers=account.headers)
    error = assert_error(r, 422, "EINVOICE_INVALID")
    findings = error["details"]["findings"]
    assert findings
    assert all(f["severity"] == "fatal" and f["rule_id"] and f["location"] for f in findings)


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_the_four_cases(einvoice_client: TestClient, issued: Any, fmt: str) -> None:
    account, invoice = issued
    assert_error(einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/{fmt}"), 401)
    stranger = register(einvoice_client, org="Stranger Ltd")
    assert_error(einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/{fmt}", headers=stranger.headers), 404)
    assert_error(einvoice_client.get(f"/api/v1/invoices/not-a-uuid/{fmt}", headers=account.headers), 422)


def test_without_rules_the_xml_says_it_was_not_checked(client: TestClient) -> None:
    account = register(client)
    buyer = create_client(client, account)
    invoice = create_invoice(client, account, buyer["id"])
    r = client.get(f"/api/v1/invoices/{invoice['id']}/ubl", headers=account.headers)
    assert r.status_code == 200
    assert r.headers["x-einvoice-validation"].startswith("skipped")
    assert invoice["invoice_number"].encode() in r.content
