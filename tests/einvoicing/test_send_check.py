"""Draft → sent passes the official e-invoice rules first: a fatal finding refuses the send, names the
findings, and leaves the invoice a draft with nothing recorded."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.einvoicing.test_export_api import BUYER, ITEMS, SELLER
from tests.factories import Account, assert_error, create_client, create_invoice, event_rows, register


def _seller_account(client: TestClient, **seller: Any) -> Account:
    account = register(client)
    r = client.patch("/api/v1/organization", json=SELLER | seller, headers=account.headers)
    assert r.status_code == 200, r.text
    return account


def _draft(client: TestClient, account: Account, **buyer: Any) -> dict[str, Any]:
    customer = create_client(client, account, **(BUYER | buyer))
    return create_invoice(client, account, customer["id"], items=ITEMS, buyer_reference="PO-778")


def _status(client: TestClient, account: Account, invoice_id: str) -> str:
    r = client.get(f"/api/v1/invoices/{invoice_id}", headers=account.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["status"])


@pytest.mark.parametrize("route", ["patch", "send"])
def test_a_valid_invoice_is_sent(einvoice_client: TestClient, db: Engine, route: str) -> None:
    account = _seller_account(einvoice_client)
    invoice = _draft(einvoice_client, account)
    if route == "patch":
        r = einvoice_client.patch(
            f"/api/v1/invoices/{invoice['id']}/status", json={"status": "sent"}, headers=account.headers
        )
    else:
        r = einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "sent"
    assert r.json()["data"]["sent_at"]
    assert len(event_rows(db, type="InvoiceStatusChanged", resource_id=invoice["id"])) == 1


@pytest.mark.parametrize("route", ["patch", "send"])
def test_an_invoice_failing_en16931_stays_a_draft(einvoice_client: TestClient, db: Engine, route: str) -> None:
    """No seller address, VAT id or electronic address: EN 16931 cannot be met."""
    account = register(einvoice_client)
    customer = create_client(einvoice_client, account)
    invoice = create_invoice(einvoice_client, account, customer["id"])
    if route == "patch":
        r = einvoice_client.patch(
            f"/api/v1/invoices/{invoice['id']}/status", json={"status": "sent"}, headers=account.headers
        )
    else:
        r = einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers)
    error = assert_error(r, 422, "EINVOICE_INVALID")
    findings = error["details"]["findings"]
    rule_ids = {f["rule_id"] for f in findings}
    assert {"BR-09", "BR-CO-26"} <= rule_ids  # no seller country; no seller VAT or legal id
    assert all(f["severity"] == "fatal" and f["syntax"] == "cii" for f in findings)
    assert _status(einvoice_client, account, invoice["id"]) == "draft"
    assert event_rows(db, type="InvoiceStatusChanged", resource_id=invoice["id"]) == []


def test_peppol_rules_apply_when_the_client_has_an_electronic_address(einvoice_client: TestClient) -> None:
    """A Belgian enterprise number (scheme 0208) with a wrong check digit breaks Peppol, not EN 16931."""
    account = _seller_account(einvoice_client)
    invoice = _draft(einvoice_client, account, electronic_address="0123456789")
    r = einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers)
    error = assert_error(r, 422, "EINVOICE_INVALID")
    findings = error["details"]["findings"]
    assert findings
    assert {(f["syntax"], f["layer"]) for f in findings} == {("ubl", "peppol")}
    assert _status(einvoice_client, account, invoice["id"]) == "draft"


def test_without_an_electronic_address_peppol_does_not_apply(einvoice_client: TestClient) -> None:
    account = _seller_account(einvoice_client)
    invoice = _draft(einvoice_client, account, electronic_address_scheme=None, electronic_address=None)
    r = einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers)
    assert r.status_code == 200, r.text


def test_credit_notes_are_checked_too(einvoice_client: TestClient) -> None:
    account = _seller_account(einvoice_client)
    invoice = _draft(einvoice_client, account)
    assert einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers).status_code == 200
    r = einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/credit-notes", headers=account.headers)
    assert r.status_code == 201, r.text
    note = r.json()["data"]
    # The Dutch seller's street address goes missing after the invoice went out: Peppol's Dutch rules
    # (NL-R-002) require it, so the credit note cannot be issued.
    r = einvoice_client.patch(
        "/api/v1/organization", json={"address_line1": None, "city": None}, headers=account.headers
    )
    assert r.status_code == 200, r.text
    r = einvoice_client.post(f"/api/v1/invoices/{note['id']}/send", headers=account.headers)
    findings = assert_error(r, 422, "EINVOICE_INVALID")["details"]["findings"]
    assert "NL-R-002" in {f["rule_id"] for f in findings}
    assert _status(einvoice_client, account, note["id"]) == "draft"


def test_send_follows_the_lifecycle(einvoice_client: TestClient) -> None:
    account = _seller_account(einvoice_client)
    invoice = _draft(einvoice_client, account)
    assert einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers).status_code == 200
    error = assert_error(einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers), 409)
    assert error["details"]["allowed_transitions"]
    assert_error(einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send"), 401)
    stranger = register(einvoice_client, org="Stranger Ltd")
    assert_error(einvoice_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=stranger.headers), 404)


def test_without_rules_sending_is_not_checked(client: TestClient) -> None:
    account = register(client)
    customer = create_client(client, account)
    invoice = create_invoice(client, account, customer["id"])
    r = client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers)
    assert r.status_code == 200, r.text
