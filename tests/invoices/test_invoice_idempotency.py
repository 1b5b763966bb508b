"""Retries and duplicates: Idempotency-Key replays the first response; an external id is unique."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    Account,
    assert_error,
    client_payload,
    count_rows,
    create_client,
    create_invoice,
    create_order,
    error_fields,
    event_rows,
    invoice_payload,
    order_payload,
    register,
    utc_today,
)

URL = "/api/v1/invoices"


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def buyer_id(client: TestClient, acct: Account) -> str:
    return str(create_client(client, acct)["id"])


def keyed(acct: Account, key: str) -> dict[str, str]:
    return {**acct.headers, "Idempotency-Key": key}


# --- Idempotency-Key ------------------------------------------------------------------------------


def test_same_key_and_body_replays_the_first_response(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    body = invoice_payload(buyer_id)
    first = client.post(URL, json=body, headers=keyed(acct, "retry-1"))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    second = client.post(URL, json=body, headers=keyed(acct, "retry-1"))
    assert second.status_code == 201, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["success"] is True
    assert second.json()["data"] == first.json()["data"]
    assert second.json()["correlation_id"] == second.headers["x-correlation-id"]
    assert count_rows(db, "invoices") == 1
    assert count_rows(db, "invoice_lines") == 2
    assert len(event_rows(db, type="InvoiceCreated")) == 1
    # The replay did not take a number: the next invoice is the second one.
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{utc_today().year}-00002"


def test_same_key_with_a_different_body_is_422(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    first = client.post(URL, json=invoice_payload(buyer_id), headers=keyed(acct, "k"))
    assert first.status_code == 201
    r = client.post(URL, json=invoice_payload(buyer_id, notes="changed"), headers=keyed(acct, "k"))
    error = assert_error(r, 422, "IDEMPOTENCY_KEY_REUSED")
    assert [f["field"] for f in error["details"]["fields"]] == ["Idempotency-Key"]
    assert count_rows(db, "invoices") == 1


def test_same_key_on_another_endpoint_is_422(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    assert client.post(URL, json=invoice_payload(buyer_id), headers=keyed(acct, "k")).status_code == 201
    r = client.post("/api/v1/clients", json=client_payload(), headers=keyed(acct, "k"))
    assert_error(r, 422, "IDEMPOTENCY_KEY_REUSED")
    assert count_rows(db, "clients") == 1


def test_keys_belong_to_one_organisation(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    mine = client.post(URL, json=invoice_payload(buyer_id), headers=keyed(acct, "shared")).json()["data"]
    other = register(client, org="Other")
    theirs_client = create_client(client, other)
    r = client.post(URL, json=invoice_payload(theirs_client["id"]), headers=keyed(other, "shared"))
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert r.json()["data"]["id"] != mine["id"]
    assert count_rows(db, "invoices") == 2


def test_a_refused_request_does_not_claim_its_key(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    bad = invoice_payload(buyer_id, due_date="2000-01-01")
    assert error_fields(client.post(URL, json=bad, headers=keyed(acct, "k"))) == ["due_date"]
    good = invoice_payload(buyer_id)
    r = client.post(URL, json=good, headers=keyed(acct, "k"))
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    again = client.post(URL, json=good, headers=keyed(acct, "k"))
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"]["id"] == r.json()["data"]["id"]
    assert count_rows(db, "invoices") == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_malformed_key_is_422(client: TestClient, db: Engine, acct: Account, buyer_id: str, key: str) -> None:
    r = client.post(URL, json=invoice_payload(buyer_id), headers=keyed(acct, key))
    assert error_fields(r) == ["Idempotency-Key"]
    assert count_rows(db, "invoices") == 0


def test_without_a_key_each_post_creates(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    body = invoice_payload(buyer_id)
    assert client.post(URL, json=body, headers=acct.headers).status_code == 201
    assert client.post(URL, json=body, headers=acct.headers).status_code == 201
    assert count_rows(db, "invoices") == 2


@pytest.mark.parametrize("kind", ["clients", "orders"])
def test_clients_and_orders_are_idempotent_too(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, kind: str
) -> None:
    body: dict[str, Any] = client_payload() if kind == "clients" else order_payload(buyer_id)
    before = count_rows(db, kind)
    first = client.post(f"/api/v1/{kind}", json=body, headers=keyed(acct, f"{kind}-1"))
    assert first.status_code == 201, first.text
    second = client.post(f"/api/v1/{kind}", json=body, headers=keyed(acct, f"{kind}-1"))
    assert second.status_code == 201, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["data"] == first.json()["data"]
    assert count_rows(db, kind) == before + 1
    changed = {**body, "notes": "different"}
    assert_error(
        client.post(f"/api/v1/{kind}", json=changed, headers=keyed(acct, f"{kind}-1")), 422, "IDEMPOTENCY_KEY_REUSED"
    )


def test_invoicing_an_order_with_a_key_replays_instead_of_conflicting(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    order = create_order(client, acct, buyer_id)
    url = f"/api/v1/orders/{order['id']}/invoice"
    first = client.post(url, headers=keyed(acct, "inv-order"))
    assert first.status_code == 201, first.text
    second = client.post(url, headers=keyed(acct, "inv-order"))
    assert second.status_code == 201, second.text
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["data"] == first.json()["data"]
    assert count_rows(db, "invoices") == 1
    # Without the key, the retry is a conflict.
    assert_error(client.post(url, headers=acct.headers), 409, "ORDER_ALREADY_INVOICED")


# --- external_id duplicates ----------------------------------------------------------------------


def test_duplicate_external_id_is_409_with_the_existing_invoice(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    first = create_invoice(client, acct, buyer_id, external_id="ERP-2024-0001")
    events = count_rows(db, "events")
    r = client.post(
        URL, json=invoice_payload(buyer_id, external_id="ERP-2024-0001", notes="retry"), headers=acct.headers
    )
    error = assert_error(r, 409, "DUPLICATE_INVOICE")
    assert error["details"] == {"field": "external_id", "existing_invoice_id": first["id"]}
    assert count_rows(db, "invoices") == 1
    assert count_rows(db, "events") == events
    # Different external ids, or none, are fine.
    create_invoice(client, acct, buyer_id, external_id="ERP-2024-0002")
    create_invoice(client, acct, buyer_id)
    create_invoice(client, acct, buyer_id)


def test_external_id_is_unique_per_organisation_only(client: TestClient, acct: Account, buyer_id: str) -> None:
    create_invoice(client, acct, buyer_id, external_id="EXT-1")
    other = register(client, org="Other")
    create_invoice(client, other, create_client(client, other)["id"], external_id="EXT-1")


def test_external_ids_compare_exactly(client: TestClient, acct: Account, buyer_id: str) -> None:
    create_invoice(client, acct, buyer_id, external_id="ext-1")
    create_invoice(client, acct, buyer_id, external_id="EXT-1")
    # Surrounding whitespace is stripped, so this one is the same id.
    r = client.post(URL, json=invoice_payload(buyer_id, external_id="  EXT-1 "), headers=acct.headers)
    assert_error(r, 409, "DUPLICATE_INVOICE")
    assert uuid.UUID(r.json()["error"]["details"]["existing_invoice_id"])
