"""POST /invoices/{id}/payments: partial and full payments, the paid transition, and everything refused."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from invoiceflow.invoices.models import Payment
from tests.factories import Account, assert_error, create_client, create_invoice, event_rows, register

# The factory's invoice: 3 x 125.00 at 21 % and 1 x 99.99 at 6 %: 474.99 + 78.75 + 6.00 = 559.74.
TOTAL = "559.74"


def _sent_invoice(client: TestClient, account: Account, **overrides: Any) -> dict[str, Any]:
    invoice = create_invoice(client, account, create_client(client, account)["id"], **overrides)
    r = client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def _pay(client: TestClient, account: Account, invoice_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/invoices/{invoice_id}/payments", json=body, headers=account.headers)


@pytest.fixture
def account(client: TestClient) -> Account:
    return register(client)


def test_partial_then_full_payment_settles_the_invoice(client: TestClient, account: Account, db: Engine) -> None:
    invoice = _sent_invoice(client, account)
    assert invoice["total_amount"] == TOTAL

    r = _pay(client, account, invoice["id"], amount="200.00", reference="BANK-1", method="bank_transfer")
    assert r.status_code == 201, r.text
    first = r.json()["data"]
    assert first["invoice"]["status"] == "sent"
    assert (first["invoice"]["amount_paid"], first["invoice"]["amount_due"]) == ("200.00", "359.74")
    assert first["payment"]["amount"] == "200.00"
    assert first["payment"]["paid_on"] == date.today().isoformat()

    r = _pay(client, account, invoice["id"], amount="359.74", paid_on=(date.today() - timedelta(days=1)).isoformat())
    assert r.status_code == 201, r.text
    settled = r.json()["data"]["invoice"]
    assert settled["status"] == "paid"
    assert (settled["amount_paid"], settled["amount_due"]) == (TOTAL, "0.00")
    assert settled["paid_at"]

    listed = client.get(f"/api/v1/invoices/{invoice['id']}/payments", headers=account.headers).json()["data"]
    assert [p["amount"] for p in listed] == ["200.00", "359.74"]
    assert [e.payload["amount"] for e in event_rows(db, type="PaymentRecorded", resource_id=invoice["id"])] == [
        "200.00",
        "359.74",
    ]
    changes = event_rows(db, type="InvoiceStatusChanged", resource_id=invoice["id"])
    assert [(e.payload["from"], e.payload["to"]) for e in changes] == [("draft", "sent"), ("sent", "paid")]
    with db.connect() as conn:
        rows = conn.execute(select(Payment.amount).where(Payment.invoice_id == uuid.UUID(invoice["id"])))
        assert sorted(row.amount for row in rows) == [Decimal("200.00"), Decimal("359.74")]
    # Settled: nothing more is taken.
    assert_error(_pay(client, account, invoice["id"], amount="0.01"), 409, "NOT_PAYABLE")


def test_an_overdue_invoice_takes_payments(client: TestClient, account: Account) -> None:
    invoice = _sent_invoice(client, account)
    r = client.patch(f"/api/v1/invoices/{invoice['id']}/status", json={"status": "overdue"}, headers=account.headers)
    assert r.status_code == 200, r.text
    r = _pay(client, account, invoice["id"], amount=TOTAL)
    assert r.json()["data"]["invoice"]["status"] == "paid"


def test_a_credit_note_refund_settles_it(client: TestClient, account: Account) -> None:
    invoice = _sent_invoice(client, account)
    note = client.post(f"/api/v1/invoices/{invoice['id']}/credit-notes", headers=account.headers).json()["data"]
    assert_error(_pay(client, account, note["id"], amount="1.00"), 409, "NOT_PAYABLE")  # still a draft
    assert client.post(f"/api/v1/invoices/{note['id']}/send", headers=account.headers).status_code == 200
    r = _pay(client, account, note["id"], amount=note["total_amount"], method="bank_transfer")
    assert r.status_code == 201, r.text
    assert r.json()["data"]["invoice"]["status"] == "paid"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "559.75"}, "amount"),  # one cent more than is due
        ({"amount": "0"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": 10.5}, "amount"),  # a float
        ({"amount": "10.005"}, "amount"),  # EUR has 2 decimals
        ({"amount": "10.00", "currency": "USD"}, "currency"),
        ({"amount": "10.00", "paid_on": (date.today() + timedelta(days=2)).isoformat()}, "paid_on"),
        ({"amount": "10.00", "method": "barter"}, "method"),
        ({"amount": "10.00", "surprise": True}, "surprise"),
    ],
)
def test_bad_payments_are_refused_and_change_nothing(
    client: TestClient, account: Account, db: Engine, body: dict[str, Any], field: str
) -> None:
    invoice = _sent_invoice(client, account)
    error = assert_error(_pay(client, account, invoice["id"], **body), 422)
    assert field in str(error["details"])
    after = client.get(f"/api/v1/invoices/{invoice['id']}", headers=account.headers).json()["data"]
    assert (after["amount_paid"], after["status"]) == ("0.00", "sent")
    assert event_rows(db, type="PaymentRecorded", resource_id=invoice["id"]) == []


def test_a_draft_takes_no_payment(client: TestClient, account: Account) -> None:
    invoice = create_invoice(client, account, create_client(client, account)["id"])
    error = assert_error(_pay(client, account, invoice["id"], amount="10.00"), 409, "NOT_PAYABLE")
    assert error["details"]["status"] == "draft"


def test_the_four_cases(client: TestClient, account: Account) -> None:
    invoice = _sent_invoice(client, account)
    assert_error(client.post(f"/api/v1/invoices/{invoice['id']}/payments", json={"amount": "1.00"}), 401)
    stranger = register(client, org="Stranger Ltd")
    assert_error(_pay(client, stranger, invoice["id"], amount="1.00"), 404)
    assert_error(client.get(f"/api/v1/invoices/{invoice['id']}/payments", headers=stranger.headers), 404)
    assert_error(_pay(client, account, "not-a-uuid", amount="1.00"), 422)


def test_a_retried_payment_is_recorded_once(client: TestClient, account: Account) -> None:
    invoice = _sent_invoice(client, account)
    headers = account.headers | {"Idempotency-Key": "pay-1"}
    url = f"/api/v1/invoices/{invoice['id']}/payments"
    first = client.post(url, json={"amount": "100.00"}, headers=headers)
    again = client.post(url, json={"amount": "100.00"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["data"] == again.json()["data"]
    listed = client.get(url, headers=account.headers).json()["data"]
    assert len(listed) == 1


def test_jpy_has_no_decimals(client: TestClient, account: Account) -> None:
    invoice = _sent_invoice(
        client,
        account,
        currency="JPY",
        items=[{"description": "Tea", "quantity": "2", "unit_price": "1500", "vat_rate": "10"}],
    )
    assert invoice["total_amount"] == "3300"
    assert_error(_pay(client, account, invoice["id"], amount="0.5"), 422)
    r = _pay(client, account, invoice["id"], amount="3300")
    assert r.json()["data"]["invoice"]["amount_due"] == "0"
