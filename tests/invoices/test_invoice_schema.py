"""The hand-built JSON of the invoice routes must match the documented pydantic schemas exactly."""

from __future__ import annotations

from fastapi.testclient import TestClient

from invoiceflow.invoices.schemas import InvoiceRead, InvoiceSummary
from tests.factories import create_client, create_invoice, register


def test_invoice_json_matches_documented_schemas(client: TestClient) -> None:
    acct = register(client)
    c = create_client(client, acct)
    created = create_invoice(client, acct, c["id"], buyer_reference="PO-1", notes="Thanks")
    got = client.get(f"/api/v1/invoices/{created['id']}", headers=acct.headers).json()["data"]
    listed = client.get("/api/v1/invoices", headers=acct.headers).json()["data"]["items"][0]
    for body in (created, got):
        # Round trip through the schema: same keys, same rendering.
        assert InvoiceRead.model_validate(body).model_dump(mode="json") == body
    assert InvoiceSummary.model_validate(listed).model_dump(mode="json") == listed
    assert set(listed) == set(InvoiceSummary.model_fields)
    assert set(got) == set(InvoiceRead.model_fields)


def test_list_items_render_exactly_as_the_invoice_itself(client: TestClient) -> None:
    """On PostgreSQL the list's JSON is written by the database (invoices/pg_list.py); on both databases
    every list item must be the same text as the summary fields of the invoice's own GET."""
    acct = register(client)
    c = create_client(client, acct)
    lines = [
        {"description": "a", "quantity": "3", "unit_price": "0.335", "vat_rate": "21", "vat_category": "S"},
        {"description": "b", "quantity": "1.5", "unit_price": "10.01", "vat_rate": "0", "vat_category": "Z"},
    ]

    def adjustments(discount: str, freight: str) -> list[dict[str, object]]:
        return [
            {"charge": False, "amount": discount, "reason_code": "95", "vat_rate": "21"},
            {"charge": True, "amount": freight, "reason": "Freight", "vat_category": "Z", "vat_rate": "0"},
        ]

    made = [
        create_invoice(client, acct, c["id"], currency=currency, items=lines, buyer_reference=ref, **extra)
        for currency, ref, extra in (
            ("EUR", "PO-1", {"allowances_charges": adjustments("0.01", "2.50"), "rounding_amount": "-0.04"}),
            ("JPY", None, {"allowances_charges": adjustments("1", "300"), "rounding_amount": "-1"}),
            ("BHD", "x_%/y", {"allowances_charges": adjustments("0.005", "0.125"), "rounding_amount": "0.003"}),
            ("USD", None, {}),
            ("EUR", None, {"rounding_amount": "1"}),
        )
    ]
    sent = client.patch(f"/api/v1/invoices/{made[0]['id']}/status", json={"status": "sent"}, headers=acct.headers)
    assert sent.status_code == 200
    listed = client.get("/api/v1/invoices?limit=10", headers=acct.headers).json()["data"]["items"]
    assert len(listed) == len(made)
    for item in listed:
        full = client.get(f"/api/v1/invoices/{item['id']}", headers=acct.headers).json()["data"]
        assert item == {key: full[key] for key in InvoiceSummary.model_fields}
    # The allowances, charges and rounding are in every total the list shows. Lines: 3 x 0.335 and
    # 1.5 x 10.01 = 1.01 + 15.02 EUR, 1 + 15 JPY, 1.005 + 15.015 BHD; the 21 % group after its allowance is
    # 1.00 EUR (VAT 0.21), 0 JPY, 1.000 BHD (VAT 0.210).
    assert {(i["currency"], i["net_amount"], i["rounding_amount"], i["amount_due"]) for i in listed} == {
        ("EUR", "18.52", "-0.04", "18.69"),
        ("JPY", "315", "-1", "314"),
        ("BHD", "16.140", "0.003", "16.353"),
        ("USD", "16.03", "0.00", "16.24"),
        ("EUR", "16.03", "1.00", "17.24"),
    }
    amounts = {item["currency"]: item["total_amount"] for item in listed}
    assert amounts["JPY"].isdigit()
    assert len(amounts["BHD"].split(".")[1]) == 3
    assert len(amounts["EUR"].split(".")[1]) == 2
