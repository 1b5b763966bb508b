"""POST /invoices/import: every official example imports with its own totals, re-exports to a document
that still validates, and nothing hostile, malformed or duplicated gets in."""

from __future__ import annotations

import csv
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree  # type: ignore[import-untyped]
from sqlalchemy.engine import Engine

from invoiceflow.einvoicing.validator import Validator
from tests.einvoicing.conftest import locate_rules_dir
from tests.einvoicing.test_export_api import ITEMS
from tests.factories import Account, assert_error, count_rows, create_client, create_invoice, event_rows, register

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
}
UBL_TOTALS = {
    "BT-106": "cac:LegalMonetaryTotal/cbc:LineExtensionAmount",
    "BT-107": "cac:LegalMonetaryTotal/cbc:AllowanceTotalAmount",
    "BT-108": "cac:LegalMonetaryTotal/cbc:ChargeTotalAmount",
    "BT-109": "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount",
    "BT-112": "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount",
    "BT-113": "cac:LegalMonetaryTotal/cbc:PrepaidAmount",
    "BT-114": "cac:LegalMonetaryTotal/cbc:PayableRoundingAmount",
    "BT-115": "cac:LegalMonetaryTotal/cbc:PayableAmount",
}
_SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
_SUM = _SETTLEMENT + "ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
CII_TOTALS = {
    "BT-106": _SUM + "ram:LineTotalAmount",
    "BT-107": _SUM + "ram:AllowanceTotalAmount",
    "BT-108": _SUM + "ram:ChargeTotalAmount",
    "BT-109": _SUM + "ram:TaxBasisTotalAmount",
    "BT-112": _SUM + "ram:GrandTotalAmount",
    "BT-113": _SUM + "ram:TotalPrepaidAmount",
    "BT-114": _SUM + "ram:RoundingAmount",
    "BT-115": _SUM + "ram:DuePayableAmount",
}


def _index() -> list[dict[str, str]]:
    index = locate_rules_dir() / "examples" / "INDEX.tsv"
    if not index.is_file():
        return []
    with index.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


EXAMPLES = {Path(row["file"]).name: row for row in _index()}


def _passes_everything(row: dict[str, str]) -> bool:
    return all(row[layer] in ("pass", "n/a") for layer in ("xsd", "en16931", "peppol"))


def document_totals(data: bytes) -> dict[str, Decimal]:
    """BT-106…BT-115 as the document states them, read with XPath (absent terms are zero)."""
    root = etree.fromstring(data)
    cii = root.tag.endswith("CrossIndustryInvoice")
    paths = CII_TOTALS if cii else UBL_TOTALS
    out = {}
    for term, path in paths.items():
        found = root.find(path, NS)
        out[term] = Decimal(found.text.strip()) if found is not None else Decimal(0)
    if cii:
        currency = root.findtext(
            _SUM.replace("ram:SpecifiedTradeSettlementHeaderMonetarySummation/", "") + "ram:InvoiceCurrencyCode",
            namespaces=NS,
        )
        vat = [e for e in root.findall(_SUM + "ram:TaxTotalAmount", NS) if e.get("currencyID") in (None, currency)]
    else:
        currency = root.findtext("cbc:DocumentCurrencyCode", namespaces=NS)
        vat = [e for e in root.findall("cac:TaxTotal/cbc:TaxAmount", NS) if e.get("currencyID") == currency]
    out["BT-110"] = Decimal(vat[0].text.strip()) if vat else Decimal(0)
    return out


def _import(client: TestClient, account: Account, data: bytes, *, media: str = "application/xml", **params: Any) -> Any:
    return client.post(
        "/api/v1/invoices/import",
        content=data,
        headers=account.headers | {"Content-Type": media},
        params=params,
    )


@pytest.fixture
def account(einvoice_client: TestClient) -> Account:
    return register(einvoice_client)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_imports_with_its_own_totals_and_exports_again(
    einvoice_client: TestClient, account: Account, validator: Validator, name: str
) -> None:
    row = EXAMPLES[name]
    data = (locate_rules_dir() / row["file"]).read_bytes()
    r = _import(einvoice_client, account, data)
    assert r.status_code == 201, r.text
    out = r.json()["data"]
    invoice, record = out["invoice"], out["import"]
    stated = document_totals(data)

    # The document's own totals, to the cent, both in the import record and on the invoice.
    for term, value in stated.items():
        assert Decimal(record["document_totals"][term]) == value, term
    assert Decimal(invoice["net_amount"]) == stated["BT-109"]
    assert Decimal(invoice["vat_amount"]) == stated["BT-110"]
    assert Decimal(invoice["total_amount"]) == stated["BT-112"]
    assert Decimal(invoice["amount_paid"]) == stated["BT-113"]
    assert invoice["kind"] == ("credit_note" if row["type_code"] == "381" else "invoice")
    assert invoice["status"] == "sent"
    assert len(invoice["items"]) == int(row["lines"])
    original = validator.validate(data)
    # (The Factur-X EXTENDED sample fails pure EN 16931 but passes: its own profile rules apply to it.)
    assert record["validation"]["status"] == ("passed" if original.valid else "failed")
    for fmt in ("ubl", "cii"):
        exported = einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/{fmt}", headers=account.headers)
        if _passes_everything(row):
            assert exported.status_code == 200, (fmt, exported.text)
            assert validator.validate(exported.content).valid
            # The re-export states the same totals.
            again = document_totals(exported.content)
            assert {t: again[t] for t in ("BT-109", "BT-110", "BT-112", "BT-115")} == {
                t: stated[t] for t in ("BT-109", "BT-110", "BT-112", "BT-115")
            }
        else:
            # A document that broke a rule on arrival may break it again, but nothing new.
            before = {f.rule_id for f in original.findings if f.severity == "fatal"}
            if exported.status_code == 200:
                continue
            findings = assert_error(exported, 422, "EINVOICE_INVALID")["details"]["findings"]
            assert {f["rule_id"] for f in findings} <= before, fmt


def test_a_second_import_of_the_same_invoice_is_refused(
    einvoice_client: TestClient, account: Account, db: Engine
) -> None:
    data = (locate_rules_dir() / "examples/ubl/peppol__base-example.xml").read_bytes()
    first = _import(einvoice_client, account, data)
    assert first.status_code == 201, first.text
    invoices_before = count_rows(db, "invoices")
    error = assert_error(_import(einvoice_client, account, data), 409, "DUPLICATE_INVOICE")
    assert error["details"]["existing_invoice_id"] == first.json()["data"]["invoice"]["id"]
    # The same document as multipart, and as CII: still the same supplier's number.
    multipart = einvoice_client.post(
        "/api/v1/invoices/import", files={"file": ("x.xml", data, "application/xml")}, headers=account.headers
    )
    assert_error(multipart, 409, "DUPLICATE_INVOICE")
    assert count_rows(db, "invoices") == invoices_before
    # Another organisation may import it: duplicates are per organisation.
    other = register(einvoice_client, org="Other BV")
    assert _import(einvoice_client, other, data).status_code == 201


def test_the_buyer_is_matched_to_an_existing_client(einvoice_client: TestClient, account: Account) -> None:
    data = (locate_rules_dir() / "examples/ubl/peppol__base-example.xml").read_bytes()
    root = etree.fromstring(data)
    vat = root.findtext("cac:AccountingCustomerParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS)
    existing = create_client(einvoice_client, account, vat_id=vat)
    r = _import(einvoice_client, account, data)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["invoice"]["client_id"] == existing["id"]


def test_an_unknown_buyer_becomes_a_client(einvoice_client: TestClient, account: Account) -> None:
    data = (locate_rules_dir() / "examples/ubl/peppol__base-example.xml").read_bytes()
    r = _import(einvoice_client, account, data)
    client_id = r.json()["data"]["invoice"]["client_id"]
    created = einvoice_client.get(f"/api/v1/clients/{client_id}", headers=account.headers).json()["data"]
    root = etree.fromstring(data)
    party = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    assert created["name"] == party.findtext("cac:PartyLegalEntity/cbc:RegistrationName", namespaces=NS)
    assert created["vat_id"] == party.findtext("cac:PartyTaxScheme/cbc:CompanyID", namespaces=NS)
    assert created["electronic_address"] == party.findtext("cbc:EndpointID", namespaces=NS)
    assert created["country"] == party.findtext("cac:PostalAddress/cac:Country/cbc:IdentificationCode", namespaces=NS)
    # A second invoice to the same buyer lands on the same client.
    second = data.replace(b"<cbc:ID>Snippet1</cbc:ID>", b"<cbc:ID>Snippet2</cbc:ID>", 1)
    assert second != data
    r2 = _import(einvoice_client, account, second)
    assert r2.status_code == 201, r2.text
    assert r2.json()["data"]["invoice"]["client_id"] == client_id


def test_strict_mode_refuses_any_fatal_finding(einvoice_client: TestClient, account: Account, db: Engine) -> None:
    """The Swedish test file passes EN 16931 but breaks Peppol's organisation-number rule."""
    data = (locate_rules_dir() / "examples/ubl/en16931-testfiles__Invoice-Min_content_with_VAT.xml").read_bytes()
    before = count_rows(db, "invoices")
    error = assert_error(_import(einvoice_client, account, data, strict="true"), 422, "EINVOICE_INVALID")
    assert "PEPPOL-COMMON-R049" in {f["rule_id"] for f in error["details"]["findings"]}
    assert count_rows(db, "invoices") == before
    lenient = _import(einvoice_client, account, data)
    assert lenient.status_code == 201
    findings = lenient.json()["data"]["import"]["validation"]["findings"]
    assert "PEPPOL-COMMON-R049" in {f["rule_id"] for f in findings}


def test_a_document_failing_the_schema_is_refused(einvoice_client: TestClient, account: Account, db: Engine) -> None:
    data = (locate_rules_dir() / "examples/ubl/peppol__base-example.xml").read_bytes()
    broken = data.replace(b"<cbc:IssueDate>", b"<cbc:Nonsense>x</cbc:Nonsense><cbc:IssueDate>", 1)
    before = count_rows(db, "invoices")
    error = assert_error(_import(einvoice_client, account, broken), 422, "EINVOICE_INVALID")
    assert {f["layer"] for f in error["details"]["findings"]} == {"xsd"}
    assert count_rows(db, "invoices") == before


def test_amounts_that_disagree_are_kept_and_reported(einvoice_client: TestClient, account: Account) -> None:
    """The document's VAT total is one cent off its own breakdown: kept as stated, reported as a difference."""
    data = (locate_rules_dir() / "examples/ubl/peppol__base-example.xml").read_bytes()
    stated = document_totals(data)
    root = etree.fromstring(data)
    tax_total = root.find("cac:TaxTotal/cbc:TaxAmount", NS)
    wrong = stated["BT-110"] + Decimal("0.01")
    tax_total.text = str(wrong)
    r = _import(einvoice_client, account, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    assert r.status_code == 201, r.text
    out = r.json()["data"]
    assert Decimal(out["invoice"]["vat_amount"]) == wrong
    terms = {d["term"]: d for d in out["import"]["differences"]}
    assert "BT-110" in terms
    assert Decimal(terms["BT-110"]["document_value"]) == wrong
    assert Decimal(terms["BT-110"]["recomputed_value"]) == stated["BT-110"]
    assert out["import"]["validation"]["status"] == "failed"  # BR-CO-14 says the same


@pytest.mark.parametrize(
    ("body", "media", "status", "code"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
            "application/xml",
            400,
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        (
            b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>',
            "application/xml",
            400,
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        (b"<Invoice><unclosed></Invoice>", "application/xml", 400, "XML_MALFORMED"),
        (b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>", "application/xml", 422, None),
        (b'{"invoice_number": ', "application/json", 400, None),
        (b"[1, 2]", "application/json", 422, None),
        (b"hello", "text/plain", 415, None),
    ],
    ids=["xxe", "billion-laughs", "malformed", "order", "bad-json", "json-array", "text"],
)
def test_hostile_and_malformed_documents_are_refused_and_change_nothing(
    einvoice_client: TestClient, account: Account, db: Engine, body: bytes, media: str, status: int, code: str | None
) -> None:
    before = (count_rows(db, "invoices"), count_rows(db, "clients"))
    r = _import(einvoice_client, account, body, media=media)
    assert_error(r, status, code)
    assert (count_rows(db, "invoices"), count_rows(db, "clients")) == before


def test_a_50_mb_document_is_refused_before_parsing(einvoice_client: TestClient, account: Account) -> None:
    body = b"<Invoice>" + b"x" * (50 * 1024 * 1024) + b"</Invoice>"
    assert_error(_import(einvoice_client, account, body), 413)


SEED = {
    "invoice_number": "LEGACY-2025-0042",
    "issue_date": "2025-03-01",
    "due_date": "2025-03-31",
    "currency": "EUR",
    "client": {
        "name": "Old Customer SA",
        "email": "ap@old.example",
        "address": {"country": "BE", "city": "Gent"},
        "vat_id": "BE0999999999",
    },
    "items": ITEMS,
    # 3 x 125.00 at 21 % and 2 x 19.99 at 9 %: 375.00 + 78.75 + 39.98 + 3.60
    "net_amount": "414.98",
    "vat_amount": "82.35",
    "total_amount": "497.33",
}


def test_seed_json_imports_with_an_inline_client(einvoice_client: TestClient, account: Account) -> None:
    r = einvoice_client.post("/api/v1/invoices/import", json=SEED, headers=account.headers)
    assert r.status_code == 201, r.text
    invoice = r.json()["data"]["invoice"]
    assert invoice["invoice_number"] == "LEGACY-2025-0042"
    assert (invoice["net_amount"], invoice["vat_amount"], invoice["total_amount"]) == ("414.98", "82.35", "497.33")
    assert invoice["status"] == "sent"
    assert r.json()["data"]["import"]["syntax"] == "json"
    customer = einvoice_client.get(f"/api/v1/clients/{invoice['client_id']}", headers=account.headers).json()["data"]
    assert (customer["name"], customer["vat_id"], customer["country"]) == ("Old Customer SA", "BE0999999999", "BE")
    assert_error(einvoice_client.post("/api/v1/invoices/import", json=SEED, headers=account.headers), 409)


def test_seed_json_whose_totals_disagree_is_refused(einvoice_client: TestClient, account: Account, db: Engine) -> None:
    before = count_rows(db, "invoices")
    r = einvoice_client.post("/api/v1/invoices/import", json=SEED | {"total_amount": "497.34"}, headers=account.headers)
    error = assert_error(r, 422, "AMOUNTS_DISAGREE")
    assert error["details"]["differences"] == [{"field": "total_amount", "document": "497.34", "recomputed": "497.33"}]
    assert count_rows(db, "invoices") == before


def test_an_imported_invoice_too_large_for_a_page_answers_422_not_500(
    einvoice_client: TestClient, account: Account, db: Engine
) -> None:
    """An address longer than a page imports (the totals are right), but its PDF cannot be laid out: the
    download says so in the error envelope, and no document row or file is left behind."""
    client = SEED["client"] | {"address": {"line1": "Markt " * 20000, "city": "Gent", "country": "BE"}}
    r = einvoice_client.post("/api/v1/invoices/import", json=SEED | {"client": client}, headers=account.headers)
    assert r.status_code == 201, r.text
    invoice = r.json()["data"]["invoice"]
    before = count_rows(db, "documents")
    error = assert_error(
        einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers),
        422,
        "DOCUMENT_TOO_LARGE_TO_RENDER",
    )
    assert "LEGACY-2025-0042 is too large to lay out on one A4 page" in error["message"]
    assert error["details"]["format"] == "pdf"
    assert count_rows(db, "documents") == before


def test_pdf_of_an_imported_invoice_shows_the_document_totals(
    einvoice_client: TestClient, account: Account, tmp_path: Path
) -> None:
    data = (locate_rules_dir() / "examples/cii/en16931__CII_example1.xml").read_bytes()
    r = _import(einvoice_client, account, data)
    assert r.status_code == 201, r.text
    invoice = r.json()["data"]["invoice"]
    pdf = einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    assert pdf.status_code == 200
    path = tmp_path / "imported.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    assert invoice["invoice_number"] in text
    stated = document_totals(data)
    for term in ("BT-109", "BT-110", "BT-112"):
        assert f"{stated[term]:,.2f}" in text, term


def test_the_import_record(einvoice_client: TestClient, account: Account, db: Engine) -> None:
    data = (locate_rules_dir() / "examples/ubl/peppol__base-creditnote-correction.xml").read_bytes()
    r = _import(einvoice_client, account, data)
    assert r.status_code == 201, r.text
    invoice = r.json()["data"]["invoice"]
    assert invoice["kind"] == "credit_note"
    record = einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/import", headers=account.headers)
    assert record.status_code == 200, record.text
    assert record.json()["data"]["syntax"] == "ubl"
    assert record.json()["data"]["validation"]["status"] == "passed"
    assert len(event_rows(db, type="InvoiceImported", resource_id=invoice["id"])) == 1
    stranger = register(einvoice_client, org="Stranger Ltd")
    assert_error(einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/import", headers=stranger.headers), 404)
    assert_error(einvoice_client.get(f"/api/v1/invoices/{invoice['id']}/import"), 401)
    own = create_invoice(einvoice_client, account, create_client(einvoice_client, account)["id"])
    made_here = einvoice_client.get(f"/api/v1/invoices/{own['id']}/import", headers=account.headers)
    assert made_here.json()["data"] == {"imported": False, "invoice_id": own["id"]}


def test_without_rules_the_import_says_it_was_not_validated(client: TestClient) -> None:
    account = register(client)
    data = (locate_rules_dir() / "examples/ubl/peppol__base-example.xml").read_bytes()
    r = _import(client, account, data)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["import"]["validation"]["status"] == "skipped"


def test_an_idempotent_retry_returns_the_first_import(einvoice_client: TestClient, account: Account) -> None:
    data = (locate_rules_dir() / "examples/ubl/peppol__base-example.xml").read_bytes()
    headers = account.headers | {"Content-Type": "application/xml", "Idempotency-Key": "import-1"}
    first = einvoice_client.post("/api/v1/invoices/import", content=data, headers=headers)
    again = einvoice_client.post("/api/v1/invoices/import", content=data, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["data"] == again.json()["data"]


def test_seed_json_can_name_an_existing_client(einvoice_client: TestClient, account: Account) -> None:
    customer = create_client(einvoice_client, account)
    seed = {key: value for key, value in SEED.items() if key != "client"} | {
        "client_id": customer["id"],
        "invoice_number": "LEGACY-2025-0043",
    }
    r = einvoice_client.post("/api/v1/invoices/import", json=seed, headers=account.headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["invoice"]["client_id"] == customer["id"]
    stranger = register(einvoice_client, org="Stranger Ltd")
    r = einvoice_client.post("/api/v1/invoices/import", json=seed, headers=stranger.headers)
    assert "client_id" in str(assert_error(r, 422)["details"])
    neither = {key: value for key, value in seed.items() if key != "client_id"}
    assert "client" in str(
        assert_error(einvoice_client.post("/api/v1/invoices/import", json=neither, headers=account.headers), 422)[
            "details"
        ]
    )
