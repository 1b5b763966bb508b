"""GET /invoices/{id}/ubl and /cii of invoices and credit notes with document-level allowances and charges
(EN 16931 BG-20 / BG-21): they pass the official rules, with the API's amounts to the cent."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree  # type: ignore[import-untyped]

from invoiceflow.einvoicing.validator import Validator
from tests.einvoicing.test_export_api import BUYER, SELLER
from tests.factories import Account, create_client, create_invoice, register

ITEMS = [
    {"description": "Consulting", "quantity": "3", "unit_code": "HUR", "unit_price": "125.00", "vat_rate": "21"},
    {"description": "Books", "quantity": "2", "unit_price": "19.99", "vat_rate": "9"},
]
ADJUSTMENTS = [
    {"charge": False, "amount": "37.50", "reason": "Volume discount", "reason_code": "95", "vat_rate": "21"},
    {"charge": False, "amount": "4.00", "reason_code": "95", "vat_rate": "9"},
    {"charge": True, "amount": "15.00", "reason": "Freight", "reason_code": "FC", "vat_rate": "21"},
    {
        "charge": True,
        "amount": "5.00",
        "reason": "Customs handling",
        "vat_category": "Z",
        "vat_rate": "0",
    },
]


@pytest.fixture
def account(einvoice_client: TestClient) -> Account:
    account = register(einvoice_client)
    r = einvoice_client.patch("/api/v1/organization", json=SELLER, headers=account.headers)
    assert r.status_code == 200, r.text
    return account


def make_invoice(client: TestClient, account: Account, **extra: Any) -> dict[str, Any]:
    buyer = create_client(client, account, **BUYER)
    return create_invoice(
        client, account, buyer["id"], items=ITEMS, allowances_charges=ADJUSTMENTS, buyer_reference="PO-778", **extra
    )


NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
UBL_TOTALS = "/*/cac:LegalMonetaryTotal/cbc:"
CII_TOTALS = "//ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"


def amounts(xml: str, path: str) -> list[str]:
    return [str(node.text) for node in etree.fromstring(xml.encode()).xpath(path, namespaces=NS)]


def check(client: TestClient, account: Account, validator: Validator, invoice_id: str, fmt: str) -> str:
    r = client.get(f"/api/v1/invoices/{invoice_id}/{fmt}", headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.headers["x-einvoice-validation"] == "passed"
    report = validator.validate(r.content)
    assert report.valid, [f.as_dict() for f in report.findings]
    return r.content.decode()


def test_the_invoice_totals_to_the_cent(einvoice_client: TestClient, account: Account) -> None:
    invoice = make_invoice(einvoice_client, account)
    # 21 %: 375.00 - 37.50 + 15.00 = 352.50 -> 74.03; 9 %: 39.98 - 4.00 = 35.98 -> 3.24; Z: 5.00.
    assert [
        (g["vat_category"], g["vat_rate"], g["taxable_amount"], g["vat_amount"]) for g in invoice["vat_breakdown"]
    ] == [
        ("S", "21", "352.50", "74.03"),
        ("S", "9", "35.98", "3.24"),
        ("Z", "0", "5.00", "0.00"),
    ]
    assert (invoice["net_amount"], invoice["vat_amount"], invoice["total_amount"]) == ("393.48", "77.27", "470.75")


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_an_invoice_with_allowances_and_charges_passes_the_official_rules(
    einvoice_client: TestClient, account: Account, validator: Validator, fmt: str
) -> None:
    invoice = make_invoice(einvoice_client, account)
    xml = check(einvoice_client, account, validator, invoice["id"], fmt)
    # BG-22 as the API shows it: BT-106, BT-107, BT-108, BT-109, BT-110, BT-112, BT-115.
    if fmt == "ubl":
        totals = {
            "LineExtensionAmount": "line_total_amount",
            "AllowanceTotalAmount": "allowance_total_amount",
            "ChargeTotalAmount": "charge_total_amount",
            "TaxExclusiveAmount": "net_amount",
            "TaxInclusiveAmount": "total_amount",
            "PayableAmount": "amount_due",
        }
        prefix = UBL_TOTALS
        assert amounts(xml, "/*/cac:AllowanceCharge/cbc:Amount") == [a["amount"] for a in invoice["allowances_charges"]]
    else:
        totals = {
            "LineTotalAmount": "line_total_amount",
            "AllowanceTotalAmount": "allowance_total_amount",
            "ChargeTotalAmount": "charge_total_amount",
            "TaxBasisTotalAmount": "net_amount",
            "GrandTotalAmount": "total_amount",
            "DuePayableAmount": "amount_due",
        }
        prefix = CII_TOTALS
        adjustments = "//ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount"
        assert amounts(xml, adjustments) == [a["amount"] for a in invoice["allowances_charges"]]
    for element, field in totals.items():
        assert amounts(xml, prefix + element) == [invoice[field]], element
    for reason in ("Volume discount", "Freight", "Customs handling"):
        assert f">{reason}<" in xml
    assert ">FC<" in xml
    assert ">95<" in xml


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_a_credit_note_with_allowances_passes_the_official_rules(
    einvoice_client: TestClient, account: Account, validator: Validator, fmt: str
) -> None:
    invoice = make_invoice(einvoice_client, account)
    r = einvoice_client.patch(
        f"/api/v1/invoices/{invoice['id']}/status", json={"status": "sent"}, headers=account.headers
    )
    assert r.status_code == 200, r.text
    body = {"lines": [{"position": 1, "quantity": "1"}], "allowances_charges": [{"position": 1, "amount": "12.50"}]}
    r = einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/credit-notes", json=body, headers=account.headers)
    assert r.status_code == 201, r.text
    note = r.json()["data"]
    assert (note["net_amount"], note["vat_amount"], note["total_amount"]) == ("112.50", "23.63", "136.13")
    xml = check(einvoice_client, account, validator, note["id"], fmt)
    assert f">{note['total_amount']}<" in xml


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_a_rounding_amount_is_exported(
    einvoice_client: TestClient, account: Account, validator: Validator, fmt: str
) -> None:
    """BT-114 in the XML, so that BR-CO-16 (BT-115 = BT-112 - BT-113 + BT-114) holds there too."""
    invoice = make_invoice(einvoice_client, account, rounding_amount="0.25")
    assert invoice["amount_due"] == "471.00"
    xml = check(einvoice_client, account, validator, invoice["id"], fmt)
    rounding = UBL_TOTALS + "PayableRoundingAmount" if fmt == "ubl" else CII_TOTALS + "RoundingAmount"
    assert amounts(xml, rounding) == ["0.25"]
