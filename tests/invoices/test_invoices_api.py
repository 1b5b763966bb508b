from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from invoiceflow.invoices.models import Invoice
from tests.factories import (
    Account,
    assert_error,
    audit_rows,
    count_rows,
    create_api_key,
    create_client,
    create_invoice,
    error_fields,
    event_rows,
    invoice_payload,
    register,
    utc_today,
)


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


# --- read, update, delete: auth, tenancy, validation, happy paths ---------------------------------

URL = "/api/v1/invoices"


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def buyer_id(client: TestClient, acct: Account) -> str:
    return str(create_client(client, acct)["id"])


def invoice_row(engine: Engine, invoice_id: str) -> Invoice:
    with Session(engine) as session:
        row = session.scalars(select(Invoice).where(Invoice.id == uuid.UUID(invoice_id))).one()
        session.expunge(row)
        return row


def send(client: TestClient, acct: Account, invoice_id: str, status: str = "sent") -> dict[str, Any]:
    r = client.patch(f"{URL}/{invoice_id}/status", json={"status": status}, headers=acct.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def test_create_invoice_returns_every_field_and_records_event_and_audit(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    body = invoice_payload(buyer_id, notes="Thanks!", buyer_reference="PO-42", external_id="ERP-9")
    r = client.post(URL, json=body, headers=acct.headers)
    assert r.status_code == 201, r.text
    inv = r.json()["data"]
    assert inv == {
        "id": inv["id"],
        "kind": "invoice",
        "invoice_number": f"INV-{utc_today().year}-00001",
        "credited_invoice_id": None,
        "client_id": buyer_id,
        "order_id": None,
        "status": "draft",
        "issue_date": body["issue_date"],
        "due_date": body["due_date"],
        "currency": "EUR",
        "net_amount": "474.99",
        "vat_amount": "84.75",
        "total_amount": "559.74",
        "amount_paid": "0.00",
        "rounding_amount": "0.00",
        "amount_due": "559.74",
        "buyer_reference": "PO-42",
        "external_id": "ERP-9",
        "allowed_transitions": ["sent", "cancelled"],
        "created_at": inv["created_at"],
        "updated_at": inv["updated_at"],
        "notes": "Thanks!",
        "items": [
            {
                "description": "Consulting",
                "quantity": "3",
                "unit_code": "HUR",
                "unit_price": "125.00",
                "vat_category": "S",
                "vat_rate": "21",
                "vat_exemption_reason": None,
                "line_total": "375.00",
            },
            {
                "description": "Licence",
                "quantity": "1",
                "unit_code": "C62",
                "unit_price": "99.99",
                "vat_category": "S",
                "vat_rate": "6",
                "vat_exemption_reason": None,
                "line_total": "99.99",
            },
        ],
        "allowances_charges": [],
        "line_total_amount": "474.99",
        "allowance_total_amount": "0.00",
        "charge_total_amount": "0.00",
        "vat_breakdown": [
            {"vat_category": "S", "vat_rate": "21", "taxable_amount": "375.00", "vat_amount": "78.75"},
            {"vat_category": "S", "vat_rate": "6", "taxable_amount": "99.99", "vat_amount": "6.00"},
        ],
        "pdf_url": f"/api/v1/invoices/{inv['id']}/pdf",
        "sent_at": None,
        "paid_at": None,
    }
    row = invoice_row(db, inv["id"])
    assert str(row.organization_id) == acct.organization_id
    assert row.total_amount == Decimal("559.74")
    assert count_rows(db, "invoice_lines") == 2

    (event,) = event_rows(db, type="InvoiceCreated")
    assert event.resource_type == "invoice"
    assert event.resource_id == inv["id"]
    assert event.payload == {
        "invoice_id": inv["id"],
        "invoice_number": inv["invoice_number"],
        "client_id": buyer_id,
        "status": "draft",
        "currency": "EUR",
        "total_amount": "559.74",
        "due_date": body["due_date"],
    }
    (audit,) = audit_rows(db, action="invoice.create")
    assert audit.resource_id == inv["id"]
    assert str(audit.actor_user_id) == acct.user_id


def test_create_invoice_requires_authentication(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    assert_error(client.post(URL, json=invoice_payload(buyer_id)), 401, "UNAUTHORIZED")
    assert_error(
        client.post(URL, json=invoice_payload(buyer_id), headers={"X-API-Key": "nope"}), 401, "INVALID_API_KEY"
    )
    assert count_rows(db, "invoices") == 0


def test_create_invoice_with_an_api_key(client: TestClient, acct: Account, buyer_id: str) -> None:
    key = create_api_key(client, acct)
    r = client.post(URL, json=invoice_payload(buyer_id), headers={"X-API-Key": key["key"]})
    assert r.status_code == 201, r.text


def test_get_invoice(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id)
    r = client.get(f"{URL}/{inv['id']}", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == inv
    assert_error(client.get(f"{URL}/{inv['id']}"), 401, "UNAUTHORIZED")
    other = register(client, org="Other")
    assert_error(client.get(f"{URL}/{inv['id']}", headers=other.headers), 404, "INVOICE_NOT_FOUND")
    assert_error(client.get(f"{URL}/{uuid.uuid4()}", headers=acct.headers), 404, "INVOICE_NOT_FOUND")
    assert error_fields(client.get(f"{URL}/1", headers=acct.headers)) == ["invoice_id"]


def test_update_draft_replacing_items_recomputes_totals(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    inv = create_invoice(client, acct, buyer_id)
    r = client.patch(
        f"{URL}/{inv['id']}",
        json={
            "items": [
                {"description": "Audit", "quantity": "3", "unit_price": "33.335", "vat_rate": "21"},
                {"description": "Books", "quantity": "1", "unit_price": "10", "vat_category": "Z", "vat_rate": "0"},
                {"description": "Hosting", "quantity": "12", "unit_price": "9.99", "vat_rate": "21"},
            ],
            "notes": "Revised",
        },
        headers=acct.headers,
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [i["line_total"] for i in data["items"]] == ["100.01", "10.00", "119.88"]
    # S 21 %: 219.89 -> 46.1769 -> 46.18.
    assert data["vat_breakdown"] == [
        {"vat_category": "S", "vat_rate": "21", "taxable_amount": "219.89", "vat_amount": "46.18"},
        {"vat_category": "Z", "vat_rate": "0", "taxable_amount": "10.00", "vat_amount": "0.00"},
    ]
    assert (data["net_amount"], data["vat_amount"], data["total_amount"], data["amount_due"]) == (
        "229.89",
        "46.18",
        "276.07",
        "276.07",
    )
    assert data["notes"] == "Revised"
    assert data["invoice_number"] == inv["invoice_number"]
    assert data["status"] == "draft"
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"] == data
    assert count_rows(db, "invoice_lines") == 3
    assert invoice_row(db, inv["id"]).total_amount == Decimal("276.07")
    (event,) = event_rows(db, type="InvoiceUpdated")
    assert event.payload["total_amount"] == "276.07"
    assert event.payload["changed"] == ["items", "notes"]


def test_update_draft_currency_recomputes_with_the_new_minor_unit(
    client: TestClient, acct: Account, buyer_id: str
) -> None:
    inv = create_invoice(client, acct, buyer_id)
    r = client.patch(f"{URL}/{inv['id']}", json={"currency": "JPY"}, headers=acct.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    # 375 + 99.99 -> 100; VAT 78.75 -> 79 and 6 % of 100 = 6.
    assert [i["line_total"] for i in data["items"]] == ["375", "100"]
    assert (data["net_amount"], data["vat_amount"], data["total_amount"]) == ("475", "85", "560")


def test_update_draft_dates_and_client(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id)
    other_client = create_client(client, acct)
    due = (utc_today() + timedelta(days=60)).isoformat()
    r = client.patch(
        f"{URL}/{inv['id']}", json={"due_date": due, "client_id": other_client["id"]}, headers=acct.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["due_date"] == due
    assert r.json()["data"]["client_id"] == other_client["id"]
    assert r.json()["data"]["total_amount"] == inv["total_amount"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({"items": None}, "items"),
        ({"items": [{"description": "x", "quantity": "0", "unit_price": "1", "vat_rate": "21"}]}, "items.0.quantity"),
        ({"items": [{"description": "x", "quantity": "1", "unit_price": "0", "vat_rate": "21"}]}, "items"),
        ({"client_id": None}, "client_id"),
        ({"currency": None}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"issue_date": None}, "issue_date"),
        ({"due_date": "2000-01-01"}, "due_date"),
        ({"status": "paid"}, "status"),
        ({"external_id": "new"}, "external_id"),
    ],
)
def test_update_draft_rejects_invalid_input(
    client: TestClient, acct: Account, buyer_id: str, body: dict[str, Any], field: str
) -> None:
    inv = create_invoice(client, acct, buyer_id)
    assert field in error_fields(client.patch(f"{URL}/{inv['id']}", json=body, headers=acct.headers))
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"] == inv


def test_update_draft_to_unknown_or_foreign_client_is_422(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id)
    other = register(client, org="Other")
    foreign = create_client(client, other)
    for client_id in (str(uuid.uuid4()), foreign["id"]):
        r = client.patch(f"{URL}/{inv['id']}", json={"client_id": client_id}, headers=acct.headers)
        assert error_fields(r) == ["client_id"]
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"]["client_id"] == buyer_id


def test_update_due_date_before_issue_date_is_422(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, issue_date=(utc_today() + timedelta(days=10)).isoformat())
    r = client.patch(
        f"{URL}/{inv['id']}", json={"due_date": (utc_today() + timedelta(days=5)).isoformat()}, headers=acct.headers
    )
    assert error_fields(r) == ["due_date"]


def test_update_invoice_auth_and_tenancy(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id)
    assert_error(client.patch(f"{URL}/{inv['id']}", json={"notes": "x"}), 401, "UNAUTHORIZED")
    other = register(client, org="Other")
    r = client.patch(f"{URL}/{inv['id']}", json={"notes": "x"}, headers=other.headers)
    assert_error(r, 404, "INVOICE_NOT_FOUND")
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"] == inv


@pytest.mark.parametrize("path", [["sent"], ["sent", "paid"], ["sent", "overdue"], ["cancelled"]])
def test_only_a_draft_can_be_edited(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, path: list[str]
) -> None:
    inv = create_invoice(client, acct, buyer_id)
    for status in path:
        send(client, acct, inv["id"], status)
    before = client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"]
    r = client.patch(
        f"{URL}/{inv['id']}",
        json={"items": [{"description": "x", "quantity": "1", "unit_price": "1", "vat_rate": "21"}]},
        headers=acct.headers,
    )
    error = assert_error(r, 409, "INVOICE_NOT_EDITABLE")
    assert error["details"] == {"status": path[-1]}
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"] == before
    assert event_rows(db, type="InvoiceUpdated") == []


@pytest.mark.parametrize("path", [[], ["cancelled"]])
def test_delete_draft_or_cancelled_is_a_soft_delete(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, path: list[str]
) -> None:
    keep = create_invoice(client, acct, buyer_id)
    inv = create_invoice(client, acct, buyer_id)
    for status in path:
        send(client, acct, inv["id"], status)
    r = client.delete(f"{URL}/{inv['id']}", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == inv["id"]
    assert_error(client.get(f"{URL}/{inv['id']}", headers=acct.headers), 404, "INVOICE_NOT_FOUND")
    listed = client.get(URL, headers=acct.headers).json()["data"]["items"]
    assert [i["id"] for i in listed] == [keep["id"]]
    row = invoice_row(db, inv["id"])
    assert row.deleted_at is not None
    assert row.invoice_number == inv["invoice_number"]
    assert [e.resource_id for e in event_rows(db, type="InvoiceDeleted")] == [inv["id"]]
    assert_error(client.delete(f"{URL}/{inv['id']}", headers=acct.headers), 404, "INVOICE_NOT_FOUND")
    assert_error(client.patch(f"{URL}/{inv['id']}/status", json={"status": "sent"}, headers=acct.headers), 404)
    # A deleted invoice's number is never handed out again.
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{utc_today().year}-00003"


@pytest.mark.parametrize("path", [["sent"], ["sent", "paid"], ["sent", "overdue"]])
def test_a_sent_invoice_cannot_be_deleted(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, path: list[str]
) -> None:
    inv = create_invoice(client, acct, buyer_id)
    for status in path:
        send(client, acct, inv["id"], status)
    error = assert_error(client.delete(f"{URL}/{inv['id']}", headers=acct.headers), 409, "INVOICE_NOT_DELETABLE")
    assert error["details"] == {"status": path[-1]}
    assert invoice_row(db, inv["id"]).deleted_at is None
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).status_code == 200


def test_delete_invoice_auth_and_tenancy(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id)
    assert_error(client.delete(f"{URL}/{inv['id']}"), 401, "UNAUTHORIZED")
    other = register(client, org="Other")
    assert_error(client.delete(f"{URL}/{inv['id']}", headers=other.headers), 404, "INVOICE_NOT_FOUND")
    assert invoice_row(db, inv["id"]).deleted_at is None
