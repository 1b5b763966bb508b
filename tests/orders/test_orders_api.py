"""API tests for /api/v1/orders: create with totals and numbering, status transitions, list filters,
soft delete, and turning an order into an invoice."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from invoiceflow.orders.models import Order
from tests.factories import (
    Account,
    assert_error,
    audit_rows,
    count_rows,
    create_client,
    create_order,
    error_fields,
    event_rows,
    order_payload,
    register,
    utc_today,
)

BASE = "/api/v1/orders"
ITEM = {"product_name": "Thing", "quantity": "1", "unit_price": "10.00", "vat_rate": "21"}


def order_row(engine: Engine, order_id: str) -> Order:
    with Session(engine) as session:
        row = session.scalars(select(Order).where(Order.id == uuid.UUID(order_id))).one()
        session.expunge(row)
        return row


def list_ids(client: TestClient, account: Account, **params: Any) -> list[str]:
    r = client.get(BASE, params={"limit": 200, **params}, headers=account.headers)
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json()["data"]["items"]]


def set_status(client: TestClient, account: Account, order_id: str, status: str) -> Any:
    return client.patch(f"{BASE}/{order_id}/status", json={"status": status}, headers=account.headers)


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def buyer(client: TestClient, acct: Account) -> dict[str, Any]:
    return create_client(client, acct)


# --- create ---------------------------------------------------------------------------------------


def test_create_order_computes_totals_and_generates_a_number(
    client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]
) -> None:
    r = client.post(BASE, json=order_payload(buyer["id"], notes="Deliver to dock 4"), headers=acct.headers)
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    year = utc_today().year
    assert data == {
        "id": data["id"],
        "order_number": f"ORD-{year}-00001",
        "client_id": buyer["id"],
        "status": "pending",
        "order_date": utc_today().isoformat(),
        "currency": "EUR",
        "notes": "Deliver to dock 4",
        "items": [
            {"product_name": "Widget", "quantity": "4", "unit_price": "12.50", "vat_rate": "21", "line_total": "50.00"},
            {"product_name": "Gadget", "quantity": "1", "unit_price": "80.00", "vat_rate": "21", "line_total": "80.00"},
        ],
        # 130.00 net, 21 % VAT = 27.30
        "net_amount": "130.00",
        "vat_amount": "27.30",
        "total_amount": "157.30",
        "invoice_id": None,
        "allowed_transitions": ["processing", "cancelled"],
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
    }
    assert create_order(client, acct, buyer["id"])["order_number"] == f"ORD-{year}-00002"
    assert create_order(client, acct, buyer["id"])["order_number"] == f"ORD-{year}-00003"

    first = event_rows(db, type="OrderCreated")[0]
    assert first.resource_id == data["id"]
    assert first.payload == {
        "order_id": data["id"],
        "order_number": f"ORD-{year}-00001",
        "client_id": buyer["id"],
        "total_amount": "157.30",
        "currency": "EUR",
    }
    assert len(audit_rows(db, action="order.create", resource_id=data["id"])) == 1


def test_create_order_rounds_half_up_per_line_and_groups_vat(
    client: TestClient, acct: Account, buyer: dict[str, Any]
) -> None:
    order = create_order(
        client,
        acct,
        buyer["id"],
        items=[
            # 3 x 33.335 = 100.005 -> 100.01
            {"product_name": "A", "quantity": "3", "unit_price": "33.335", "vat_rate": "21"},
            # 1 x 0.005 -> 0.01
            {"product_name": "B", "quantity": "1", "unit_price": "0.005", "vat_rate": "6"},
            # 2.5 x 19.99 = 49.975 -> 49.98
            {"product_name": "C", "quantity": "2.5", "unit_price": "19.99", "vat_rate": "0"},
        ],
    )
    assert [i["line_total"] for i in order["items"]] == ["100.01", "0.01", "49.98"]
    assert order["net_amount"] == "150.00"
    # 100.01 x 21 % = 21.0021 -> 21.00; 0.01 x 6 % = 0.0006 -> 0.00; 0 %
    assert order["vat_amount"] == "21.00"
    assert order["total_amount"] == "171.00"
    assert order["items"][1]["unit_price"] == "0.005"
    assert order["items"][2]["quantity"] == "2.5"


def test_create_order_takes_the_currency_from_the_client_when_absent(client: TestClient, acct: Account) -> None:
    gbp = create_client(client, acct, currency="GBP")
    body = order_payload(gbp["id"])
    del body["currency"]
    r = client.post(BASE, json=body, headers=acct.headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["currency"] == "GBP"
    # An explicit currency wins over the client's.
    assert create_order(client, acct, gbp["id"], currency="EUR")["currency"] == "EUR"
    # Without either, the organisation's default currency.
    plain = create_client(client, acct, currency=None)
    body = order_payload(plain["id"])
    del body["currency"]
    assert client.post(BASE, json=body, headers=acct.headers).json()["data"]["currency"] == "EUR"


def test_create_order_with_explicit_number_and_date(client: TestClient, acct: Account, buyer: dict[str, Any]) -> None:
    order = create_order(client, acct, buyer["id"], order_number="PO-7781/A", order_date="2024-02-29")
    assert order["order_number"] == "PO-7781/A"
    assert order["order_date"] == "2024-02-29"
    # An explicit number does not consume the generated sequence.
    assert create_order(client, acct, buyer["id"])["order_number"] == f"ORD-{utc_today().year}-00001"


def test_create_order_with_duplicate_number_is_409(
    client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]
) -> None:
    create_order(client, acct, buyer["id"], order_number="PO-1")
    before = count_rows(db, "orders")
    r = client.post(BASE, json=order_payload(buyer["id"], order_number="PO-1"), headers=acct.headers)
    error = assert_error(r, 409, "DUPLICATE_ORDER_NUMBER")
    assert error["details"]["field"] == "order_number"
    assert count_rows(db, "orders") == before
    # Another organisation may use the same number.
    other = register(client, org="Other")
    create_order(client, other, create_client(client, other)["id"], order_number="PO-1")


def test_generated_number_skips_a_number_taken_explicitly(
    client: TestClient, acct: Account, buyer: dict[str, Any]
) -> None:
    year = utc_today().year
    assert create_order(client, acct, buyer["id"])["order_number"] == f"ORD-{year}-00001"
    create_order(client, acct, buyer["id"], order_number=f"ORD-{year}-00002")
    assert create_order(client, acct, buyer["id"])["order_number"] == f"ORD-{year}-00003"
    assert create_order(client, acct, buyer["id"])["order_number"] == f"ORD-{year}-00004"


def test_create_order_requires_authentication(client: TestClient, acct: Account, buyer: dict[str, Any]) -> None:
    assert_error(client.post(BASE, json=order_payload(buyer["id"])), 401, "UNAUTHORIZED")


def test_create_order_for_a_client_of_another_organisation_is_refused(
    client: TestClient, db: Engine, acct: Account
) -> None:
    other = register(client, org="Other")
    foreign = create_client(client, other)
    r = client.post(BASE, json=order_payload(foreign["id"]), headers=acct.headers)
    assert error_fields(r) == ["client_id"]
    assert count_rows(db, "orders") == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [{**ITEM, "quantity": "0"}]}, "items.0.quantity"),
        ({"items": [{**ITEM, "quantity": "-1"}]}, "items.0.quantity"),
        ({"items": [{**ITEM, "unit_price": "-0.01"}]}, "items.0.unit_price"),
        ({"items": [{**ITEM, "unit_price": 10.5}]}, "items.0.unit_price"),
        ({"items": [{**ITEM, "vat_rate": "101"}]}, "items.0.vat_rate"),
        ({"items": [{**ITEM, "product_name": ""}]}, "items.0.product_name"),
        ({"items": [{**ITEM, "sku": "X"}]}, "items.0.sku"),
        ({"currency": "XYZ"}, "currency"),
        ({"order_number": "has spaces"}, "order_number"),
        ({"order_date": "2024-13-01"}, "order_date"),
        ({"status": "completed"}, "status"),
    ],
)
def test_create_order_rejects_invalid_input(
    client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any], overrides: dict[str, Any], field: str
) -> None:
    r = client.post(BASE, json=order_payload(buyer["id"], **overrides), headers=acct.headers)
    assert field in error_fields(r)
    assert count_rows(db, "orders") == 0


def test_create_order_without_client_id_or_for_unknown_client_is_422(
    client: TestClient, acct: Account, buyer: dict[str, Any]
) -> None:
    body = order_payload(buyer["id"])
    del body["client_id"]
    assert error_fields(client.post(BASE, json=body, headers=acct.headers)) == ["client_id"]
    r = client.post(BASE, json=order_payload(str(uuid.uuid4())), headers=acct.headers)
    assert error_fields(r) == ["client_id"]
    r = client.post(BASE, json=order_payload("not-a-uuid"), headers=acct.headers)
    assert error_fields(r) == ["client_id"]


# --- read -----------------------------------------------------------------------------------------


def test_get_order(client: TestClient, acct: Account, buyer: dict[str, Any]) -> None:
    order = create_order(client, acct, buyer["id"])
    r = client.get(f"{BASE}/{order['id']}", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == order


def test_get_order_requires_authentication(client: TestClient, acct: Account, buyer: dict[str, Any]) -> None:
    order = create_order(client, acct, buyer["id"])
    assert_error(client.get(f"{BASE}/{order['id']}"), 401, "UNAUTHORIZED")


def test_get_order_of_another_organisation_is_404(client: TestClient, acct: Account, buyer: dict[str, Any]) -> None:
    order = create_order(client, acct, buyer["id"])
    other = register(client, org="Other")
    assert_error(client.get(f"{BASE}/{order['id']}", headers=other.headers), 404, "ORDER_NOT_FOUND")
    assert_error(client.get(f"{BASE}/{uuid.uuid4()}", headers=acct.headers), 404, "ORDER_NOT_FOUND")
    assert error_fields(client.get(f"{BASE}/123", headers=acct.headers)) == ["order_id"]


# --- status ---------------------------------------------------------------------------------------


def test_order_status_pending_processing_completed(
    client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]
) -> None:
    order = create_order(client, acct, buyer["id"])
    r = set_status(client, acct, order["id"], "processing")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "processing"
    assert r.json()["data"]["allowed_transitions"] == ["completed", "cancelled"]
    r = set_status(client, acct, order["id"], "completed")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == "completed"
    assert data["allowed_transitions"] == []
    assert data["total_amount"] == order["total_amount"]
    assert client.get(f"{BASE}/{order['id']}", headers=acct.headers).json()["data"]["status"] == "completed"
    assert [e.payload for e in event_rows(db, type="OrderStatusChanged")] == [
        {"order_id": order["id"], "from": "pending", "to": "processing"},
        {"order_id": order["id"], "from": "processing", "to": "completed"},
    ]
    assert [a.details for a in audit_rows(db, action="order.status")] == [
        {"from": "pending", "to": "processing"},
        {"from": "processing", "to": "completed"},
    ]


@pytest.mark.parametrize("path", [["cancelled"], ["processing", "cancelled"]])
def test_order_can_be_cancelled_from_pending_and_processing(
    client: TestClient, acct: Account, buyer: dict[str, Any], path: list[str]
) -> None:
    order = create_order(client, acct, buyer["id"])
    for status in path:
        r = set_status(client, acct, order["id"], status)
        assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "cancelled"
    assert r.json()["data"]["allowed_transitions"] == []


@pytest.mark.parametrize(
    ("path", "target", "allowed"),
    [
        (["processing", "completed"], "cancelled", []),
        (["processing", "completed"], "pending", []),
        (["cancelled"], "processing", []),
        ([], "completed", ["processing", "cancelled"]),
        ([], "pending", ["processing", "cancelled"]),
        (["processing"], "pending", ["completed", "cancelled"]),
        (["processing"], "processing", ["completed", "cancelled"]),
    ],
)
def test_invalid_order_transition_is_409_with_the_allowed_ones(
    client: TestClient,
    db: Engine,
    acct: Account,
    buyer: dict[str, Any],
    path: list[str],
    target: str,
    allowed: list[str],
) -> None:
    order = create_order(client, acct, buyer["id"])
    for status in path:
        assert set_status(client, acct, order["id"], status).status_code == 200
    events_before = count_rows(db, "events")
    error = assert_error(set_status(client, acct, order["id"], target), 409, "INVALID_STATUS_TRANSITION")
    current = path[-1] if path else "pending"
    assert error["details"] == {"current_status": current, "requested_status": target, "allowed_transitions": allowed}
    assert client.get(f"{BASE}/{order['id']}", headers=acct.headers).json()["data"]["status"] == current
    assert count_rows(db, "events") == events_before


def test_order_status_validation_auth_and_tenancy(client: TestClient, acct: Account, buyer: dict[str, Any]) -> None:
    order = create_order(client, acct, buyer["id"])
    url = f"{BASE}/{order['id']}/status"
    assert error_fields(client.patch(url, json={"status": "shipped"}, headers=acct.headers)) == ["status"]
    assert error_fields(client.patch(url, json={}, headers=acct.headers)) == ["status"]
    assert_error(client.patch(url, json={"status": "processing"}), 401, "UNAUTHORIZED")
    other = register(client, org="Other")
    assert_error(client.patch(url, json={"status": "processing"}, headers=other.headers), 404, "ORDER_NOT_FOUND")
    assert client.get(f"{BASE}/{order['id']}", headers=acct.headers).json()["data"]["status"] == "pending"


# --- list -----------------------------------------------------------------------------------------


def test_list_orders_filters(client: TestClient, acct: Account) -> None:
    c1 = create_client(client, acct)
    c2 = create_client(client, acct)
    jan = create_order(client, acct, c1["id"], order_date="2025-01-15")
    feb = create_order(client, acct, c2["id"], order_date="2025-02-15")
    mar = create_order(client, acct, c1["id"], order_date="2025-03-15")
    assert set_status(client, acct, feb["id"], "processing").status_code == 200
    assert set_status(client, acct, mar["id"], "cancelled").status_code == 200

    assert list_ids(client, acct) == [mar["id"], feb["id"], jan["id"]]
    assert list_ids(client, acct, status="pending") == [jan["id"]]
    assert list_ids(client, acct, status="processing") == [feb["id"]]
    assert list_ids(client, acct, status="completed") == []
    assert list_ids(client, acct, client_id=c1["id"]) == [mar["id"], jan["id"]]
    assert list_ids(client, acct, date_from="2025-02-15") == [mar["id"], feb["id"]]
    assert list_ids(client, acct, date_to="2025-02-15") == [feb["id"], jan["id"]]
    assert list_ids(client, acct, date_from="2025-02-01", date_to="2025-02-28") == [feb["id"]]
    assert list_ids(client, acct, date_from="2025-04-01") == []
    assert list_ids(client, acct, client_id=c1["id"], status="cancelled") == [mar["id"]]
    assert list_ids(client, acct, client_id=str(uuid.uuid4())) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "shipped"}, "status"),
        ({"client_id": "x"}, "client_id"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"limit": 0}, "limit"),
        ({"cursor": "!!"}, "cursor"),
    ],
)
def test_list_orders_rejects_invalid_parameters(
    client: TestClient, acct: Account, params: dict[str, Any], field: str
) -> None:
    assert field in error_fields(client.get(BASE, params=params, headers=acct.headers))


def test_list_orders_is_scoped_and_requires_authentication(
    client: TestClient, acct: Account, buyer: dict[str, Any]
) -> None:
    mine = create_order(client, acct, buyer["id"])
    other = register(client, org="Other")
    create_order(client, other, create_client(client, other)["id"])
    assert list_ids(client, acct) == [mine["id"]]
    assert_error(client.get(BASE), 401, "UNAUTHORIZED")


def test_list_orders_paginates_without_duplicates_or_misses(
    client: TestClient, acct: Account, buyer: dict[str, Any]
) -> None:
    created = [create_order(client, acct, buyer["id"])["id"] for _ in range(7)]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(BASE, params=params, headers=acct.headers).json()["data"]
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


# --- delete ---------------------------------------------------------------------------------------


def test_delete_order_is_a_soft_delete(client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]) -> None:
    keep = create_order(client, acct, buyer["id"])
    gone = create_order(client, acct, buyer["id"])
    r = client.delete(f"{BASE}/{gone['id']}", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert_error(client.get(f"{BASE}/{gone['id']}", headers=acct.headers), 404, "ORDER_NOT_FOUND")
    assert list_ids(client, acct) == [keep["id"]]
    assert order_row(db, gone["id"]).deleted_at is not None
    assert [e.payload for e in event_rows(db, type="OrderDeleted")] == [{"order_id": gone["id"]}]
    assert_error(client.delete(f"{BASE}/{gone['id']}", headers=acct.headers), 404, "ORDER_NOT_FOUND")
    assert_error(set_status(client, acct, gone["id"], "processing"), 404, "ORDER_NOT_FOUND")
    assert_error(client.post(f"{BASE}/{gone['id']}/invoice", headers=acct.headers), 404, "ORDER_NOT_FOUND")


def test_delete_order_auth_and_tenancy(client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]) -> None:
    order = create_order(client, acct, buyer["id"])
    assert_error(client.delete(f"{BASE}/{order['id']}"), 401, "UNAUTHORIZED")
    other = register(client, org="Other")
    assert_error(client.delete(f"{BASE}/{order['id']}", headers=other.headers), 404, "ORDER_NOT_FOUND")
    assert order_row(db, order["id"]).deleted_at is None


def test_an_invoiced_order_cannot_be_deleted(
    client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]
) -> None:
    order = create_order(client, acct, buyer["id"])
    invoice = client.post(f"{BASE}/{order['id']}/invoice", headers=acct.headers).json()["data"]
    error = assert_error(client.delete(f"{BASE}/{order['id']}", headers=acct.headers), 409, "ORDER_INVOICED")
    assert error["details"] == {"invoice_id": invoice["id"]}
    assert order_row(db, order["id"]).deleted_at is None


# --- order -> invoice -----------------------------------------------------------------------------


def test_invoice_an_order_creates_a_draft_with_the_same_lines_and_totals(
    client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]
) -> None:
    order = create_order(
        client,
        acct,
        buyer["id"],
        notes="Rush",
        items=[
            {"product_name": "Widget", "quantity": "3", "unit_price": "33.335", "vat_rate": "21"},
            {"product_name": "Manual", "quantity": "2", "unit_price": "7.50", "vat_rate": "6"},
            {"product_name": "Export crate", "quantity": "1", "unit_price": "20", "vat_rate": "0"},
        ],
    )
    r = client.post(f"{BASE}/{order['id']}/invoice", headers=acct.headers)
    assert r.status_code == 201, r.text
    inv = r.json()["data"]
    assert inv["status"] == "draft"
    assert inv["order_id"] == order["id"]
    assert inv["client_id"] == buyer["id"]
    assert inv["currency"] == order["currency"]
    assert inv["invoice_number"] == f"INV-{utc_today().year}-00001"
    assert inv["buyer_reference"] == order["order_number"]
    assert inv["notes"] == "Rush"
    assert [
        (i["description"], i["quantity"], i["unit_price"], i["vat_rate"], i["line_total"]) for i in inv["items"]
    ] == [(i["product_name"], i["quantity"], i["unit_price"], i["vat_rate"], i["line_total"]) for i in order["items"]]
    assert [i["vat_category"] for i in inv["items"]] == ["S", "S", "Z"]
    for field in ("net_amount", "vat_amount", "total_amount"):
        assert inv[field] == order[field]
    assert (inv["net_amount"], inv["vat_amount"], inv["total_amount"]) == ("135.01", "21.90", "156.91")
    assert inv["vat_breakdown"] == [
        {"vat_category": "S", "vat_rate": "21", "taxable_amount": "100.01", "vat_amount": "21.00"},
        {"vat_category": "S", "vat_rate": "6", "taxable_amount": "15.00", "vat_amount": "0.90"},
        {"vat_category": "Z", "vat_rate": "0", "taxable_amount": "20.00", "vat_amount": "0.00"},
    ]

    after = client.get(f"{BASE}/{order['id']}", headers=acct.headers).json()["data"]
    assert after["invoice_id"] == inv["id"]
    got = client.get(f"/api/v1/invoices/{inv['id']}", headers=acct.headers).json()["data"]
    assert got == inv
    (event,) = event_rows(db, type="OrderInvoiced")
    assert event.payload == {"order_id": order["id"], "invoice_id": inv["id"], "invoice_number": inv["invoice_number"]}
    assert len(event_rows(db, type="InvoiceCreated", resource_id=inv["id"])) == 1


def test_invoice_an_order_twice_is_409(client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]) -> None:
    order = create_order(client, acct, buyer["id"])
    first = client.post(f"{BASE}/{order['id']}/invoice", headers=acct.headers).json()["data"]
    error = assert_error(
        client.post(f"{BASE}/{order['id']}/invoice", headers=acct.headers), 409, "ORDER_ALREADY_INVOICED"
    )
    assert error["details"] == {"invoice_id": first["id"]}
    assert count_rows(db, "invoices") == 1


def test_order_can_be_invoiced_again_once_its_draft_invoice_is_deleted(
    client: TestClient, acct: Account, buyer: dict[str, Any]
) -> None:
    order = create_order(client, acct, buyer["id"])
    first = client.post(f"{BASE}/{order['id']}/invoice", headers=acct.headers).json()["data"]
    assert client.delete(f"/api/v1/invoices/{first['id']}", headers=acct.headers).status_code == 200
    assert client.get(f"{BASE}/{order['id']}", headers=acct.headers).json()["data"]["invoice_id"] is None
    r = client.post(f"{BASE}/{order['id']}/invoice", headers=acct.headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["id"] != first["id"]


@pytest.mark.parametrize("path", [["cancelled"], ["processing", "cancelled"]])
def test_a_cancelled_order_cannot_be_invoiced(
    client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any], path: list[str]
) -> None:
    order = create_order(client, acct, buyer["id"])
    for status in path:
        assert set_status(client, acct, order["id"], status).status_code == 200
    assert_error(client.post(f"{BASE}/{order['id']}/invoice", headers=acct.headers), 409, "ORDER_CANCELLED")
    assert count_rows(db, "invoices") == 0


def test_invoice_an_order_auth_and_tenancy(
    client: TestClient, db: Engine, acct: Account, buyer: dict[str, Any]
) -> None:
    order = create_order(client, acct, buyer["id"])
    assert_error(client.post(f"{BASE}/{order['id']}/invoice"), 401, "UNAUTHORIZED")
    other = register(client, org="Other")
    assert_error(client.post(f"{BASE}/{order['id']}/invoice", headers=other.headers), 404, "ORDER_NOT_FOUND")
    assert_error(client.post(f"{BASE}/{uuid.uuid4()}/invoice", headers=acct.headers), 404, "ORDER_NOT_FOUND")
    assert error_fields(client.post(f"{BASE}/nope/invoice", headers=acct.headers)) == ["order_id"]
    assert count_rows(db, "invoices") == 0
    assert client.get(f"{BASE}/{order['id']}", headers=acct.headers).json()["data"]["invoice_id"] is None


def test_order_date_in_the_past_is_kept_and_invoice_dated_today(
    client: TestClient, acct: Account, buyer: dict[str, Any]
) -> None:
    old = (utc_today() - timedelta(days=400)).isoformat()
    order = create_order(client, acct, buyer["id"], order_date=old)
    assert order["order_date"] == old
    inv = client.post(f"{BASE}/{order['id']}/invoice", headers=acct.headers).json()["data"]
    assert inv["issue_date"] == utc_today().isoformat()
