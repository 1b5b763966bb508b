from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import create_client, create_invoice, register


def test_create_invoice_computes_totals_and_number(client: TestClient) -> None:
    acct = register(client)
    c = create_client(client, acct)
    inv = create_invoice(client, acct, c["id"])
    # 3 x 125.00 = 375.00 at 21% -> 78.75; 1 x 99.99 at 6% -> 6.00 (5.9994 rounded half-up)
    assert inv["net_amount"] == "474.99"
    assert inv["vat_amount"] == "84.75"
    assert inv["total_amount"] == "559.74"
    assert inv["amount_due"] == "559.74"
    assert inv["status"] == "draft"
    assert inv["allowed_transitions"] == ["sent", "cancelled"]
    assert inv["invoice_number"].endswith("-00001")
    assert {(v["vat_rate"], v["taxable_amount"], v["vat_amount"]) for v in inv["vat_breakdown"]} == {
        ("21", "375.00", "78.75"),
        ("6", "99.99", "6.00"),
    }
