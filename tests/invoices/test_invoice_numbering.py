"""Where the invoice number is written: the row, the response, the InvoiceCreated event and the audit
log agree, whichever path assigned it (ADR 0004: one self-committing statement on PostgreSQL, the
numbering statement last before COMMIT otherwise)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from invoiceflow.invoices.models import Invoice
from tests.factories import (
    audit_rows,
    count_rows,
    create_client,
    create_invoice,
    event_rows,
    invoice_payload,
    register,
    utc_today,
)


def _stored_number(db: Engine, invoice_id: str) -> str | None:
    with Session(db) as session:
        return session.scalar(select(Invoice.invoice_number).where(Invoice.id == uuid.UUID(invoice_id)))


def test_number_reaches_row_response_event_and_audit(client: TestClient, db: Engine) -> None:
    acct = register(client)
    buyer = create_client(client, acct)["id"]
    first = create_invoice(client, acct, buyer)
    second = create_invoice(client, acct, buyer)
    year = utc_today().year
    assert [first["invoice_number"], second["invoice_number"]] == [f"INV-{year}-00001", f"INV-{year}-00002"]
    for inv in (first, second):
        assert _stored_number(db, inv["id"]) == inv["invoice_number"]
        (event,) = event_rows(db, type="InvoiceCreated", resource_id=inv["id"])
        assert event.payload["invoice_number"] == inv["invoice_number"]
        assert event.payload["total_amount"] == inv["total_amount"]
        (audit,) = audit_rows(db, action="invoice.create", resource_id=inv["id"])
        assert audit.actor_user_id is not None
    assert count_rows(db, "invoice_lines") == 2 * len(first["items"])
    r = client.get(f"/api/v1/invoices/{first['id']}", headers=acct.headers)
    assert r.json()["data"]["invoice_number"] == first["invoice_number"]


def test_idempotent_and_deferred_creates_share_one_series(client: TestClient, db: Engine) -> None:
    acct = register(client)
    buyer = create_client(client, acct)["id"]
    year = utc_today().year
    plain = create_invoice(client, acct, buyer)
    headers = {**acct.headers, "Idempotency-Key": "numbering-1"}
    keyed = client.post("/api/v1/invoices", json=invoice_payload(buyer), headers=headers)
    assert keyed.status_code == 201, keyed.text
    replay = client.post("/api/v1/invoices", json=invoice_payload(buyer), headers=headers)
    assert replay.json()["data"]["invoice_number"] == keyed.json()["data"]["invoice_number"]
    after = create_invoice(client, acct, buyer, external_id="ext-1")
    numbers = [plain["invoice_number"], keyed.json()["data"]["invoice_number"], after["invoice_number"]]
    assert numbers == [f"INV-{year}-{n:05d}" for n in (1, 2, 3)]


@pytest.mark.parametrize("bad_client", ["00000000-0000-4000-8000-000000000000"])
def test_a_refused_create_takes_no_number(client: TestClient, db: Engine, bad_client: str) -> None:
    acct = register(client)
    buyer = create_client(client, acct)["id"]
    r = client.post("/api/v1/invoices", json=invoice_payload(bad_client), headers=acct.headers)
    assert r.status_code == 422
    assert create_invoice(client, acct, buyer)["invoice_number"].endswith("-00001")
