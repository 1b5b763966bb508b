from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tests.factories import create_client, invoice_payload, register


def test_amounts_beyond_storage_are_422_not_500(client: TestClient, db: Engine) -> None:
    acct = register(client)
    c = create_client(client, acct)
    body = invoice_payload(
        c["id"], items=[{"description": "Big", "quantity": "1000000000", "unit_price": "1000000000", "vat_rate": "21"}]
    )
    r = client.post("/api/v1/invoices", json=body, headers=acct.headers)
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["details"]["fields"]] == ["items"]
    order = {
        "client_id": c["id"],
        "items": [{"product_name": "Big", "quantity": "1000000000", "unit_price": "1000000000", "vat_rate": "21"}],
    }
    assert client.post("/api/v1/orders", json=order, headers=acct.headers).status_code == 422
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM invoices")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar_one() == 0


def test_largest_allowed_amount_round_trips(client: TestClient) -> None:
    acct = register(client)
    c = create_client(client, acct)
    body = invoice_payload(
        c["id"], items=[{"description": "Big", "quantity": "1000", "unit_price": "1000000000.00", "vat_rate": "21"}]
    )
    r = client.post("/api/v1/invoices", json=body, headers=acct.headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["total_amount"] == "1210000000000.00"
    got = client.get(f"/api/v1/invoices/{r.json()['data']['id']}", headers=acct.headers).json()["data"]
    assert got["total_amount"] == "1210000000000.00"


def test_non_json_body_is_415(client: TestClient) -> None:
    acct = register(client)
    r = client.post(
        "/api/v1/clients",
        content=b"name=x",
        headers={**acct.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
