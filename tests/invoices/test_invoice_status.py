"""The invoice status table: allowed changes, refused ones (409 with the allowed ones), and their events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    Account,
    assert_error,
    audit_rows,
    count_rows,
    create_client,
    create_invoice,
    error_fields,
    event_rows,
    register,
)

URL = "/api/v1/invoices"
ALLOWED = {
    "draft": ["sent", "cancelled"],
    "sent": ["paid", "overdue"],
    "overdue": ["paid"],
    "paid": [],
    "cancelled": [],
}


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def buyer_id(client: TestClient, acct: Account) -> str:
    return str(create_client(client, acct)["id"])


def change(client: TestClient, acct: Account, invoice_id: str, status: str) -> Any:
    return client.patch(f"{URL}/{invoice_id}/status", json={"status": status}, headers=acct.headers)


@pytest.mark.parametrize("path", [["sent", "paid"], ["sent", "overdue", "paid"], ["cancelled"], ["sent", "overdue"]])
def test_allowed_status_paths(client: TestClient, db: Engine, acct: Account, buyer_id: str, path: list[str]) -> None:
    inv = create_invoice(client, acct, buyer_id)
    previous = "draft"
    for status in path:
        r = change(client, acct, inv["id"], status)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["status"] == status
        assert data["allowed_transitions"] == ALLOWED[status]
        assert data["total_amount"] == inv["total_amount"]
        assert data["updated_at"] > inv["updated_at"]
        previous = status
    got = client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"]
    assert got == data
    assert got["status"] == previous

    events = event_rows(db, type="InvoiceStatusChanged")
    froms = ["draft", *path[:-1]]
    assert [(e.payload["from"], e.payload["to"]) for e in events] == list(zip(froms, path, strict=True))
    for event, status in zip(events, path, strict=True):
        assert event.resource_id == inv["id"]
        assert event.payload == {
            "invoice_id": inv["id"],
            "invoice_number": inv["invoice_number"],
            "client_id": buyer_id,
            "status": status,
            "currency": "EUR",
            "total_amount": "559.74",
            "due_date": inv["due_date"],
            "from": event.payload["from"],
            "to": status,
        }
    assert [a.details["to"] for a in audit_rows(db, action="invoice.status")] == path


def test_sending_and_paying_set_the_timestamps_and_the_amount_due(
    client: TestClient, acct: Account, buyer_id: str
) -> None:
    inv = create_invoice(client, acct, buyer_id)
    sent = change(client, acct, inv["id"], "sent").json()["data"]
    assert sent["sent_at"] is not None
    assert sent["paid_at"] is None
    assert (sent["amount_paid"], sent["amount_due"]) == ("0.00", "559.74")
    paid = change(client, acct, inv["id"], "paid").json()["data"]
    assert paid["sent_at"] == sent["sent_at"]
    assert paid["paid_at"] is not None
    assert paid["paid_at"] >= sent["sent_at"]
    assert (paid["amount_paid"], paid["amount_due"]) == ("559.74", "0.00")


@pytest.mark.parametrize(
    ("path", "target"),
    [
        (["sent", "paid"], "draft"),
        (["sent", "paid"], "sent"),
        (["sent", "paid"], "overdue"),
        ([], "paid"),
        ([], "overdue"),
        ([], "draft"),
        (["sent"], "draft"),
        (["sent"], "cancelled"),
        (["sent"], "sent"),
        (["sent", "overdue"], "sent"),
        (["sent", "overdue"], "cancelled"),
        (["cancelled"], "draft"),
        (["cancelled"], "sent"),
    ],
)
def test_invalid_status_change_is_409_with_the_allowed_ones(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, path: list[str], target: str
) -> None:
    inv = create_invoice(client, acct, buyer_id)
    for status in path:
        assert change(client, acct, inv["id"], status).status_code == 200
    current = path[-1] if path else "draft"
    before = client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"]
    events = count_rows(db, "events")
    error = assert_error(change(client, acct, inv["id"], target), 409, "INVALID_STATUS_TRANSITION")
    assert error["details"] == {
        "current_status": current,
        "requested_status": target,
        "allowed_transitions": ALLOWED[current],
    }
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"] == before
    assert count_rows(db, "events") == events


@pytest.mark.parametrize("body", [{"status": "archived"}, {"status": None}, {}, {"status": "sent", "force": True}])
def test_invalid_status_body_is_422(client: TestClient, acct: Account, buyer_id: str, body: dict[str, Any]) -> None:
    inv = create_invoice(client, acct, buyer_id)
    fields = error_fields(client.patch(f"{URL}/{inv['id']}/status", json=body, headers=acct.headers))
    assert fields == ["force"] if "force" in body else fields == ["status"]
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"]["status"] == "draft"


def test_status_change_auth_and_tenancy(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id)
    assert_error(client.patch(f"{URL}/{inv['id']}/status", json={"status": "sent"}), 401, "UNAUTHORIZED")
    other = register(client, org="Other")
    assert_error(change(client, other, inv["id"], "sent"), 404, "INVOICE_NOT_FOUND")
    assert_error(change(client, acct, str(uuid.uuid4()), "sent"), 404, "INVOICE_NOT_FOUND")
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"]["status"] == "draft"
    assert event_rows(db, type="InvoiceStatusChanged") == []
