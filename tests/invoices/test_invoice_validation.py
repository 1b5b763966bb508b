"""Creating an invoice validates every field; each refusal is a 422 naming the field and writes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    Account,
    assert_error,
    count_rows,
    create_client,
    error_fields,
    invoice_payload,
    register,
    utc_today,
)

URL = "/api/v1/invoices"
LINE = {"description": "Consulting", "quantity": "1", "unit_price": "100.00", "vat_rate": "21"}


def with_line(**changes: Any) -> dict[str, Any]:
    item = {**LINE, **changes}
    return {"items": [{k: v for k, v in item.items() if v is not ...}]}


def days(n: int) -> str:
    return (utc_today() + timedelta(days=n)).isoformat()


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def buyer_id(client: TestClient, acct: Account) -> str:
    return str(create_client(client, acct)["id"])


def assert_nothing_written(db: Engine) -> None:
    assert count_rows(db, "invoices") == 0
    assert count_rows(db, "invoice_lines") == 0
    assert count_rows(db, "number_sequences") == 0
    assert count_rows(db, "idempotency_keys") == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"items": []}, "items"),
        ({"items": [LINE] * 1001}, "items"),
        ({"items": "Consulting"}, "items"),
        (with_line(quantity="0"), "items.0.quantity"),
        (with_line(quantity="-1"), "items.0.quantity"),
        (with_line(quantity="0.0000001"), "items.0.quantity"),
        (with_line(quantity="abc"), "items.0.quantity"),
        (with_line(quantity="NaN"), "items.0.quantity"),
        (with_line(quantity="Infinity"), "items.0.quantity"),
        (with_line(quantity=...), "items.0.quantity"),
        (with_line(unit_price="-5.00"), "items.0.unit_price"),
        (with_line(unit_price="1.1234567"), "items.0.unit_price"),
        (with_line(unit_price="1e400"), "items.0.unit_price"),
        (with_line(unit_price=...), "items.0.unit_price"),
        (with_line(vat_rate="101"), "items.0.vat_rate"),
        (with_line(vat_rate="-1"), "items.0.vat_rate"),
        (with_line(vat_rate="21.555"), "items.0.vat_rate"),
        (with_line(vat_rate=...), "items.0.vat_rate"),
        (with_line(vat_category="S", vat_rate="0"), "items.0.vat_rate"),
        (with_line(vat_rate="0"), "items.0.vat_rate"),  # S is the default category
        (with_line(vat_category="Z", vat_rate="21"), "items.0.vat_rate"),
        (with_line(vat_category="E", vat_rate="6"), "items.0.vat_rate"),
        (with_line(vat_category="X"), "items.0.vat_category"),
        (with_line(description=""), "items.0.description"),
        (with_line(description="x" * 1001), "items.0.description"),
        (with_line(unit_code="hour"), "items.0.unit_code"),
        (with_line(colour="red"), "items.0.colour"),
        # Money and quantities must be decimal strings, never JSON floats.
        (with_line(unit_price=100.5), "items.0.unit_price"),
        (with_line(quantity=1.0), "items.0.quantity"),
        (with_line(vat_rate=21.0), "items.0.vat_rate"),
        (with_line(unit_price=True), "items.0.unit_price"),
        # A total of zero is not an invoice.
        (with_line(unit_price="0"), "items"),
        (with_line(quantity="0.001", unit_price="1"), "items"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XAU"}, "currency"),
        ({"currency": 978}, "currency"),
        ({"issue_date": "2025-02-30"}, "issue_date"),
        ({"due_date": "next week"}, "due_date"),
        ({"external_id": "x" * 201}, "external_id"),
        ({"notes": "x" * 2001}, "notes"),
        ({"buyer_reference": "x" * 201}, "buyer_reference"),
        ({"invoice_number": "INV-1"}, "invoice_number"),
        ({"status": "paid"}, "status"),
        ({"total_amount": "1.00"}, "total_amount"),
        ({"order_id": "nope"}, "order_id"),
    ],
)
def test_invalid_invoice_is_422_naming_the_field(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, overrides: dict[str, Any], field: str
) -> None:
    r = client.post(URL, json=invoice_payload(buyer_id, **overrides), headers=acct.headers)
    assert field in error_fields(r), r.text
    assert_error(r, 422, "VALIDATION_ERROR")
    assert_nothing_written(db)


def test_missing_client_is_422(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    body = invoice_payload(buyer_id)
    del body["client_id"]
    assert error_fields(client.post(URL, json=body, headers=acct.headers)) == ["client_id"]
    assert_nothing_written(db)


def test_missing_items_is_422(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    body = invoice_payload(buyer_id)
    del body["items"]
    assert error_fields(client.post(URL, json=body, headers=acct.headers)) == ["items"]


def test_unknown_client_is_422_on_client_id(client: TestClient, db: Engine, acct: Account) -> None:
    r = client.post(URL, json=invoice_payload(str(uuid.uuid4())), headers=acct.headers)
    assert error_fields(r) == ["client_id"]
    assert error_fields(client.post(URL, json=invoice_payload("not-a-uuid"), headers=acct.headers)) == ["client_id"]
    assert_nothing_written(db)


def test_client_of_another_organisation_is_422_on_client_id(client: TestClient, db: Engine, acct: Account) -> None:
    other = register(client, org="Other")
    foreign = create_client(client, other)
    assert error_fields(client.post(URL, json=invoice_payload(foreign["id"]), headers=acct.headers)) == ["client_id"]
    assert_nothing_written(db)


def test_deleted_client_is_422_on_client_id(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    assert client.delete(f"/api/v1/clients/{buyer_id}", headers=acct.headers).status_code == 200
    assert error_fields(client.post(URL, json=invoice_payload(buyer_id), headers=acct.headers)) == ["client_id"]
    assert_nothing_written(db)


@pytest.mark.parametrize(
    ("issue", "due", "message"),
    [
        (0, -1, "must not be before issue_date"),
        (10, 5, "must not be before issue_date"),
        (-30, -1, "must not be in the past"),
        (-400, -365, "must not be in the past"),
    ],
)
def test_due_date_rules(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, issue: int, due: int, message: str
) -> None:
    r = client.post(
        URL, json=invoice_payload(buyer_id, issue_date=days(issue), due_date=days(due)), headers=acct.headers
    )
    error = assert_error(r, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"] == [{"field": "due_date", "message": message, "type": "value_error"}]
    assert_nothing_written(db)


@pytest.mark.parametrize(("issue", "due"), [(0, 0), (-30, 0), (5, 5), (-10, 1)])
def test_due_date_today_or_later_is_accepted(
    client: TestClient, acct: Account, buyer_id: str, issue: int, due: int
) -> None:
    r = client.post(
        URL, json=invoice_payload(buyer_id, issue_date=days(issue), due_date=days(due)), headers=acct.headers
    )
    assert r.status_code == 201, r.text
    assert (r.json()["data"]["issue_date"], r.json()["data"]["due_date"]) == (days(issue), days(due))


def test_every_invalid_field_is_named_at_once(client: TestClient, acct: Account, buyer_id: str) -> None:
    body = invoice_payload(
        buyer_id,
        currency="XYZ",
        items=[{**LINE, "quantity": "0"}, {**LINE, "vat_rate": "101"}, {**LINE, "unit_price": 1.5}],
    )
    fields = error_fields(client.post(URL, json=body, headers=acct.headers))
    assert set(fields) == {"currency", "items.0.quantity", "items.1.vat_rate", "items.2.unit_price"}


def test_exactly_1000_lines_are_accepted(client: TestClient, acct: Account, buyer_id: str) -> None:
    r = client.post(
        URL, json=invoice_payload(buyer_id, items=[{**LINE, "unit_price": "0.01"}] * 1000), headers=acct.headers
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert len(data["items"]) == 1000
    assert (data["net_amount"], data["vat_amount"], data["total_amount"]) == ("10.00", "2.10", "12.10")


def test_integers_are_accepted_as_exact_numbers(client: TestClient, acct: Account, buyer_id: str) -> None:
    body = invoice_payload(buyer_id, items=[{"description": "x", "quantity": 2, "unit_price": 50, "vat_rate": 21}])
    r = client.post(URL, json=body, headers=acct.headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["total_amount"] == "121.00"
