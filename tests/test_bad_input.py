"""Hostile and broken input: every refusal is a 4xx in the error envelope and writes nothing; text that
looks like SQL or HTML is stored and returned verbatim and does nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from invoiceflow.clients.models import Client
from invoiceflow.core.settings import Settings
from invoiceflow.invoices.models import Invoice, InvoiceLine
from invoiceflow.main import create_app
from invoiceflow.orders.models import Order
from tests.factories import (
    Account,
    assert_error,
    client_payload,
    count_rows,
    create_client,
    create_invoice,
    create_order,
    error_fields,
    invoice_payload,
    order_payload,
    register,
)
from tests.webhooks.helpers import webhook_payload

TABLES = (
    "clients",
    "orders",
    "order_items",
    "invoices",
    "invoice_lines",
    "events",
    "audit_logs",
    "idempotency_keys",
    "number_sequences",
    "webhook_endpoints",
    "webhook_deliveries",
)
BIG = "x" * 100_000
MAX_BYTES = 5 * 1024 * 1024
LINE = {"description": "Consulting", "quantity": "1", "unit_price": "100.00", "vat_rate": "21"}


@dataclass
class World:
    acct: Account
    client_id: str
    order_id: str
    invoice_id: str
    counts: dict[str, int]

    def url(self, template: str) -> str:
        return template.format(client=self.client_id, order=self.order_id, invoice=self.invoice_id)


@pytest.fixture
def world(client: TestClient, db: Engine) -> World:
    acct = register(client)
    buyer = create_client(client, acct)
    order = create_order(client, acct, buyer["id"])
    invoice = create_invoice(client, acct, buyer["id"])
    return World(acct, buyer["id"], order["id"], invoice["id"], {t: count_rows(db, t) for t in TABLES})


def assert_unchanged(db: Engine, world: World) -> None:
    assert {t: count_rows(db, t) for t in TABLES} == world.counts


def send_raw(client: TestClient, world: World, method: str, url: str, content: Any, **headers: str) -> Any:
    return client.request(
        method,
        world.url(url),
        content=content,
        headers={**world.acct.headers, "Content-Type": "application/json", **headers},
    )


WRITE_ROUTES = [
    ("POST", "/api/v1/clients"),
    ("PATCH", "/api/v1/clients/{client}"),
    ("POST", "/api/v1/orders"),
    ("PATCH", "/api/v1/orders/{order}/status"),
    ("POST", "/api/v1/invoices"),
    ("PATCH", "/api/v1/invoices/{invoice}"),
    ("PATCH", "/api/v1/invoices/{invoice}/status"),
    ("POST", "/api/v1/webhooks"),
]

MALFORMED = [
    b'{"name": ',
    b"{'name': 'single quotes'}",
    b'{"name": "trailing comma",}',
    b'{"name": "x"} trailing garbage',
    b'{"name": "unterminated}',
    b"{name: 1}",
    b'{"name": "\xff"}',
    b'{"name": "\xc3\x28"}',
    b"[" * 100_000 + b"]" * 100_000,
]


# --- malformed JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), WRITE_ROUTES)
def test_malformed_json_is_400(client: TestClient, db: Engine, world: World, method: str, url: str) -> None:
    for body in MALFORMED:
        error = assert_error(send_raw(client, world, method, url, body), 400, "MALFORMED_JSON")
        assert error["message"] == "Request body is not valid JSON"
    assert_unchanged(db, world)


# --- wrong types ----------------------------------------------------------------------------------


def _invoice(world: World, **changes: Any) -> dict[str, Any]:
    return {**invoice_payload(world.client_id), **changes}


WRONG_TYPES: list[tuple[str, str, Any, str]] = [
    ("POST", "/api/v1/invoices", "ARRAY", "body"),
    ("POST", "/api/v1/invoices", "STRING", "body"),
    ("POST", "/api/v1/invoices", "NULL", "body"),
    ("POST", "/api/v1/invoices", "NUMBER", "body"),
    ("POST", "/api/v1/invoices", {"client_id": 123}, "client_id"),
    ("POST", "/api/v1/invoices", {"client_id": {"$ne": None}}, "client_id"),
    ("POST", "/api/v1/invoices", {"items": {}}, "items"),
    ("POST", "/api/v1/invoices", {"items": [1]}, "items.0"),
    ("POST", "/api/v1/invoices", {"items": [None]}, "items.0"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "quantity": []}]}, "items.0.quantity"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "quantity": {"value": 1}}]}, "items.0.quantity"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "description": 5}]}, "items.0.description"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "unit_price": None}]}, "items.0.unit_price"),
    ("POST", "/api/v1/invoices", {"notes": {"a": 1}}, "notes"),
    ("POST", "/api/v1/invoices", {"issue_date": 20250101}, "issue_date"),
    ("POST", "/api/v1/invoices", {"due_date": True}, "due_date"),
    ("POST", "/api/v1/invoices", {"currency": 978}, "currency"),
    ("POST", "/api/v1/invoices", {"external_id": ["a"]}, "external_id"),
    ("POST", "/api/v1/clients", {"name": ["x"]}, "name"),
    ("POST", "/api/v1/clients", {"email": True}, "email"),
    ("POST", "/api/v1/clients", {"address": "Main Street 1"}, "address"),
    ("POST", "/api/v1/clients", {"address": {"country": 56}}, "address.country"),
    ("POST", "/api/v1/clients", {"language": 1}, "language"),
    ("POST", "/api/v1/orders", {"items": "many"}, "items"),
    ("POST", "/api/v1/orders", {"order_date": True}, "order_date"),
    ("PATCH", "/api/v1/clients/{client}", {"name": 1}, "name"),
    ("PATCH", "/api/v1/invoices/{invoice}", {"items": "none"}, "items"),
    ("PATCH", "/api/v1/invoices/{invoice}/status", {"status": 1}, "status"),
    ("PATCH", "/api/v1/invoices/{invoice}/status", {"status": ["sent"]}, "status"),
    ("PATCH", "/api/v1/orders/{order}/status", {"status": None}, "status"),
    ("POST", "/api/v1/webhooks", "ARRAY", "body"),
    ("POST", "/api/v1/webhooks", {"url": 5}, "url"),
    ("POST", "/api/v1/webhooks", {"event_types": "InvoiceCreated"}, "event_types"),
    ("POST", "/api/v1/webhooks", {"event_types": [1]}, "event_types.0"),
    ("POST", "/api/v1/webhooks", {"enabled": "maybe"}, "enabled"),
    ("POST", "/api/v1/webhooks", {"secret": {"value": "x"}}, "secret"),
]


def _body(world: World, method: str, url: str, spec: Any) -> Any:
    raw = {"ARRAY": [1, 2], "STRING": "invoice", "NULL": None, "NUMBER": 42}
    if isinstance(spec, str):
        return raw[spec]
    if method == "POST" and url.endswith("/invoices"):
        return _invoice(world, **spec)
    if method == "POST" and url.endswith("/clients"):
        return client_payload(**spec)
    if method == "POST" and url.endswith("/orders"):
        return {**order_payload(world.client_id), **spec}
    if method == "POST" and url.endswith("/webhooks"):
        return webhook_payload(**spec)
    return spec


@pytest.mark.parametrize(("method", "url", "spec", "field"), WRONG_TYPES)
def test_wrong_types_are_422_naming_the_field(
    client: TestClient, db: Engine, world: World, method: str, url: str, spec: Any, field: str
) -> None:
    body = json.dumps(_body(world, method, url, spec)).encode()
    fields = error_fields(send_raw(client, world, method, url, body))
    assert field in fields
    assert_unchanged(db, world)


# --- oversized values -----------------------------------------------------------------------------


OVERSIZED: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/clients", {"name": BIG}, "name"),
    ("POST", "/api/v1/clients", {"notes": BIG}, "notes"),
    ("POST", "/api/v1/clients", {"address": {"line1": BIG, "country": "BE"}}, "address.line1"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "description": BIG}]}, "items.0.description"),
    ("POST", "/api/v1/invoices", {"notes": BIG}, "notes"),
    ("POST", "/api/v1/invoices", {"buyer_reference": BIG}, "buyer_reference"),
    ("POST", "/api/v1/invoices", {"external_id": BIG}, "external_id"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "unit_price": "9" * 100_000}]}, "items.0.unit_price"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "quantity": "1" + "0" * 30}]}, "items.0.quantity"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "unit_price": "1e999999999"}]}, "items.0.unit_price"),
    (
        "POST",
        "/api/v1/orders",
        {"items": [{"product_name": BIG, "quantity": "1", "unit_price": "1", "vat_rate": "21"}]},
        "items.0.product_name",
    ),
    ("POST", "/api/v1/orders", {"notes": BIG}, "notes"),
    ("PATCH", "/api/v1/clients/{client}", {"name": BIG}, "name"),
    ("PATCH", "/api/v1/invoices/{invoice}", {"notes": BIG}, "notes"),
    ("POST", "/api/v1/invoices", {"items": [LINE] * 10_000}, "items"),
    (
        "POST",
        "/api/v1/orders",
        {"items": [{"product_name": "x", "quantity": "1", "unit_price": "1", "vat_rate": "21"}] * 10_000},
        "items",
    ),
    ("PATCH", "/api/v1/invoices/{invoice}", {"items": [LINE] * 10_000}, "items"),
    ("POST", "/api/v1/webhooks", {"url": "https://example.com/" + BIG}, "url"),
    ("POST", "/api/v1/webhooks", {"description": BIG}, "description"),
    ("POST", "/api/v1/webhooks", {"secret": BIG}, "secret"),
    ("POST", "/api/v1/webhooks", {"event_types": ["InvoiceCreated"] * 1000}, "event_types"),
]


@pytest.mark.parametrize(("method", "url", "spec", "field"), OVERSIZED)
def test_oversized_values_are_422_naming_the_field(
    client: TestClient, db: Engine, world: World, method: str, url: str, spec: dict[str, Any], field: str
) -> None:
    body = json.dumps(_body(world, method, url, spec)).encode()
    assert len(body) < MAX_BYTES
    assert field in error_fields(send_raw(client, world, method, url, body))
    assert_unchanged(db, world)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": BIG[:5000]}, "q"), ({"cursor": BIG[:5000]}, "cursor"), ({"limit": "9" * 50}, "limit")],
)
def test_oversized_query_parameters_are_422(
    client: TestClient, world: World, params: dict[str, Any], field: str
) -> None:
    for url in ("/api/v1/clients", "/api/v1/invoices"):
        assert field in error_fields(client.get(url, params=params, headers=world.acct.headers))


# --- negative amounts -----------------------------------------------------------------------------


NEGATIVE: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "unit_price": "-10.00"}]}, "items.0.unit_price"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "quantity": "-3"}]}, "items.0.quantity"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "vat_rate": "-21"}]}, "items.0.vat_rate"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "unit_price": -10}]}, "items.0.unit_price"),
    # A negative line may not cancel out a positive one either.
    ("POST", "/api/v1/invoices", {"items": [LINE, {**LINE, "unit_price": "-100.00"}]}, "items.1.unit_price"),
    (
        "POST",
        "/api/v1/orders",
        {"items": [{"product_name": "x", "quantity": "1", "unit_price": "-1", "vat_rate": "21"}]},
        "items.0.unit_price",
    ),
    ("PATCH", "/api/v1/invoices/{invoice}", {"items": [{**LINE, "quantity": "-1"}]}, "items.0.quantity"),
]


@pytest.mark.parametrize(("method", "url", "spec", "field"), NEGATIVE)
def test_negative_amounts_are_422(
    client: TestClient, db: Engine, world: World, method: str, url: str, spec: dict[str, Any], field: str
) -> None:
    body = json.dumps(_body(world, method, url, spec)).encode()
    assert field in error_fields(send_raw(client, world, method, url, body))
    assert_unchanged(db, world)


def test_negative_list_amounts_are_422(client: TestClient, world: World) -> None:
    for name in ("min_amount", "max_amount"):
        r = client.get("/api/v1/invoices", params={name: "-1"}, headers=world.acct.headers)
        assert error_fields(r) == [name]


# --- unknown fields (no mass assignment) ----------------------------------------------------------


UNKNOWN: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/invoices", {"organization_id": str(uuid.uuid4())}, "organization_id"),
    ("POST", "/api/v1/invoices", {"id": str(uuid.uuid4())}, "id"),
    ("POST", "/api/v1/invoices", {"total_amount": "0.01"}, "total_amount"),
    ("POST", "/api/v1/invoices", {"invoice_number": "INV-1"}, "invoice_number"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "line_total": "0.01"}]}, "items.0.line_total"),
    ("POST", "/api/v1/invoices", {"deleted_at": None}, "deleted_at"),
    ("POST", "/api/v1/clients", {"organization_id": str(uuid.uuid4())}, "organization_id"),
    ("POST", "/api/v1/clients", {"address": {"country": "BE", "planet": "Mars"}}, "address.planet"),
    ("POST", "/api/v1/orders", {"status": "completed"}, "status"),
    ("POST", "/api/v1/orders", {"invoice_id": str(uuid.uuid4())}, "invoice_id"),
    ("PATCH", "/api/v1/clients/{client}", {"organization_id": str(uuid.uuid4())}, "organization_id"),
    ("PATCH", "/api/v1/clients/{client}", {"deleted_at": None}, "deleted_at"),
    ("PATCH", "/api/v1/invoices/{invoice}", {"status": "paid"}, "status"),
    ("PATCH", "/api/v1/invoices/{invoice}", {"amount_paid": "559.74"}, "amount_paid"),
    ("PATCH", "/api/v1/invoices/{invoice}/status", {"status": "sent", "sent_at": "2020-01-01T00:00:00Z"}, "sent_at"),
    ("PATCH", "/api/v1/orders/{order}/status", {"status": "processing", "invoice_id": None}, "invoice_id"),
    ("POST", "/api/v1/webhooks", {"organization_id": str(uuid.uuid4())}, "organization_id"),
    ("POST", "/api/v1/webhooks", {"fanout_floor_seq": 0}, "fanout_floor_seq"),
    ("POST", "/api/v1/webhooks", {"deleted_at": None}, "deleted_at"),
]


@pytest.mark.parametrize(("method", "url", "spec", "field"), UNKNOWN)
def test_unknown_fields_are_422(
    client: TestClient, db: Engine, world: World, method: str, url: str, spec: dict[str, Any], field: str
) -> None:
    body = json.dumps(_body(world, method, url, spec)).encode()
    fields = error_fields(send_raw(client, world, method, url, body))
    assert field in fields
    assert_unchanged(db, world)


# --- body size ------------------------------------------------------------------------------------


def _too_big() -> bytes:
    filler = "x" * (MAX_BYTES + 1)
    return json.dumps({"notes": filler}).encode()


@pytest.mark.parametrize(("method", "url"), WRITE_ROUTES)
def test_body_over_5_mb_is_413(client: TestClient, db: Engine, world: World, method: str, url: str) -> None:
    error = assert_error(send_raw(client, world, method, url, _too_big()), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"max_bytes": MAX_BYTES}
    assert_unchanged(db, world)


@pytest.mark.parametrize(("method", "url"), WRITE_ROUTES)
def test_streamed_body_over_5_mb_is_413(client: TestClient, db: Engine, world: World, method: str, url: str) -> None:
    """Without a Content-Length (chunked upload) the limit holds while the body streams in."""

    def chunks() -> Iterator[bytes]:
        yield b'{"notes": "'
        for _ in range(6):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    error = assert_error(send_raw(client, world, method, url, chunks()), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"max_bytes": MAX_BYTES}
    assert_unchanged(db, world)


def test_a_body_just_under_the_limit_is_read(client: TestClient, db: Engine, world: World) -> None:
    """Near the limit the body is parsed and judged on its content (here: notes too long), not refused for size."""
    body = json.dumps(_invoice(world, notes="x" * (MAX_BYTES - 2000))).encode()
    assert len(body) < MAX_BYTES
    assert error_fields(send_raw(client, world, "POST", "/api/v1/invoices", body)) == ["notes"]
    assert_unchanged(db, world)


# --- SQL and HTML in text -------------------------------------------------------------------------


SQL = "Robert'); DROP TABLE clients; --"
SQL2 = "' OR '1'='1' --"
SQL3 = "1; DELETE FROM invoices WHERE '1'='1"
HTML = '<script>alert("x")</script>'
HTML2 = "<img src=x onerror=alert(1)>&amp;&lt;"
UNICODE = "Zoë Ølsen 株式会社 مرحبا 🧾 e\u0301"


def test_sql_and_html_in_text_fields_are_stored_and_returned_verbatim(
    client: TestClient, db: Engine, world: World
) -> None:
    acct = world.acct
    buyer = create_client(
        client,
        acct,
        name=SQL,
        notes=HTML,
        company_id=SQL2,
        address={"line1": HTML2, "line2": SQL3, "city": UNICODE, "country": "BE"},
    )
    assert (buyer["name"], buyer["notes"], buyer["company_id"]) == (SQL, HTML, SQL2)
    assert buyer["address"] == {"line1": HTML2, "line2": SQL3, "city": UNICODE, "country": "BE"}

    order = create_order(
        client,
        acct,
        buyer["id"],
        notes=SQL3,
        items=[{"product_name": HTML, "quantity": "1", "unit_price": "10", "vat_rate": "21"}],
    )
    assert order["notes"] == SQL3
    assert order["items"][0]["product_name"] == HTML

    inv = create_invoice(
        client,
        acct,
        buyer["id"],
        notes=HTML2,
        buyer_reference=SQL2,
        external_id=SQL3,
        items=[{**LINE, "description": SQL}, {**LINE, "description": HTML}, {**LINE, "description": UNICODE}],
    )
    assert [i["description"] for i in inv["items"]] == [SQL, HTML, UNICODE]
    assert (inv["notes"], inv["buyer_reference"], inv["external_id"]) == (HTML2, SQL2, SQL3)

    r = client.get(f"/api/v1/invoices/{inv['id']}", headers=acct.headers)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["data"] == inv
    assert client.get(f"/api/v1/clients/{buyer['id']}", headers=acct.headers).json()["data"] == buyer
    assert client.get(f"/api/v1/orders/{order['id']}", headers=acct.headers).json()["data"] == order

    # The rows hold the exact text, and nothing else was touched.
    with Session(db) as session:
        row = session.scalars(select(Client).where(Client.id == uuid.UUID(buyer["id"]))).one()
        assert (row.name, row.notes, row.address["line1"], row.address["city"]) == (SQL, HTML, HTML2, UNICODE)
        lines = session.scalars(
            select(InvoiceLine.description)
            .where(InvoiceLine.invoice_id == uuid.UUID(inv["id"]))
            .order_by(InvoiceLine.position)
        ).all()
        assert lines == [SQL, HTML, UNICODE]
        assert session.scalars(select(Invoice.notes).where(Invoice.id == uuid.UUID(inv["id"]))).one() == HTML2
        assert session.scalars(select(Order.notes).where(Order.id == uuid.UUID(order["id"]))).one() == SQL3
    counts = {t: count_rows(db, t) for t in ("clients", "orders", "invoices")}
    assert counts == {
        "clients": world.counts["clients"] + 1,
        "orders": world.counts["orders"] + 1,
        "invoices": world.counts["invoices"] + 1,
    }
    for url, resource_id in (
        ("/api/v1/clients/{}", world.client_id),
        ("/api/v1/orders/{}", world.order_id),
        ("/api/v1/invoices/{}", world.invoice_id),
    ):
        assert client.get(url.format(resource_id), headers=acct.headers).status_code == 200


def test_sql_in_search_and_filters_matches_only_literally(client: TestClient, world: World) -> None:
    acct = world.acct
    tricky = create_client(client, acct, name=SQL2)
    create_invoice(client, acct, tricky["id"], external_id="EXT-1")

    def clients(q: str) -> list[str]:
        r = client.get("/api/v1/clients", params={"q": q}, headers=acct.headers)
        assert r.status_code == 200, r.text
        return [c["name"] for c in r.json()["data"]["items"]]

    def invoices(q: str) -> int:
        r = client.get("/api/v1/invoices", params={"q": q}, headers=acct.headers)
        assert r.status_code == 200, r.text
        return len(r.json()["data"]["items"])

    assert clients(SQL2) == [SQL2]
    assert clients("' OR 1=1 --") == []
    assert clients("%' OR '%'='") == []
    assert clients("\\") == []
    assert invoices(SQL2) == 1
    assert invoices("' OR 1=1 --") == 0
    assert invoices(SQL3) == 0
    for params, field in (
        ({"sort": "total_amount; DROP TABLE invoices"}, "sort"),
        ({"client_id": "1 OR 1=1"}, "client_id"),
        ({"status": "draft' OR '1'='1"}, "status"),
        ({"currency": "EUR'--"}, "currency"),
    ):
        assert error_fields(client.get("/api/v1/invoices", params=params, headers=acct.headers)) == [field]
    for path in ("/api/v1/invoices/1' OR '1'='1", "/api/v1/clients/1;DROP TABLE clients", "/api/v1/orders/<script>"):
        r = client.get(path, headers=acct.headers)
        assert_error(r, 422, "VALIDATION_ERROR")


# --- NUL characters -------------------------------------------------------------------------------


NUL_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/v1/clients", {"name": "a\u0000b"}, "name"),
    ("POST", "/api/v1/clients", {"address": {"line1": "a\u0000", "country": "BE"}}, "address.line1"),
    ("POST", "/api/v1/invoices", {"notes": "x\u0000y"}, "notes"),
    ("POST", "/api/v1/invoices", {"external_id": "\u0000"}, "external_id"),
    ("POST", "/api/v1/invoices", {"items": [{**LINE, "description": "\u0000"}]}, "items.0.description"),
    ("POST", "/api/v1/orders", {"notes": "\u0000"}, "notes"),
    ("POST", "/api/v1/webhooks", {"description": "a\u0000b"}, "description"),
    ("POST", "/api/v1/webhooks", {"url": "https://example.com/\u0000"}, "url"),
]


@pytest.mark.parametrize(("method", "url", "spec", "field"), NUL_CASES)
def test_nul_characters_in_text_are_422(
    client: TestClient, db: Engine, world: World, method: str, url: str, spec: dict[str, Any], field: str
) -> None:
    body = json.dumps(_body(world, method, url, spec)).encode()
    fields = error_fields(send_raw(client, world, method, url, body))
    assert field in fields
    assert_unchanged(db, world)


def test_nul_characters_in_search_are_422(client: TestClient, world: World) -> None:
    for url in ("/api/v1/clients", "/api/v1/invoices"):
        assert error_fields(client.get(url, params={"q": "a\u0000"}, headers=world.acct.headers)) == ["q"]


# --- tampered cursors -----------------------------------------------------------------------------


def _cursor(values: Any) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


ZERO_ID = str(uuid.UUID(int=0))
# Invalid whatever the sort.
TAMPERED_ANY = [
    _cursor([None, ZERO_ID]),
    _cursor(["x", None]),
    _cursor(["\u0000", ZERO_ID]),
    _cursor([5, ZERO_ID]),
    _cursor([{"a": 1}, ZERO_ID]),
    _cursor([[1], ZERO_ID]),
    _cursor(["x", "not-a-uuid"]),
    _cursor(["x"]),
    _cursor({"a": 1}),
    "not base64 at all!",
]
# Invalid for a timestamp sort (the default of every list).
TAMPERED_TIMESTAMP = [_cursor(["2025-01-01T00:00:00", ZERO_ID]), _cursor(["yesterday", ZERO_ID])]
# Invalid for an amount sort.
TAMPERED_AMOUNT = [
    _cursor([value, ZERO_ID]) for value in ("NaN", "Infinity", "-Infinity", "1e999999", "1.000001", "1" * 30, "12,50")
]


@pytest.mark.parametrize("cursor", TAMPERED_ANY + TAMPERED_TIMESTAMP)
def test_tampered_cursors_are_422(client: TestClient, world: World, cursor: str) -> None:
    headers = world.acct.headers
    for url in ("/api/v1/clients", "/api/v1/orders", "/api/v1/invoices"):
        assert error_fields(client.get(url, params={"cursor": cursor}, headers=headers)) == ["cursor"], url
    if cursor in TAMPERED_ANY:
        for sort in ("total_amount", "-total_amount", "issue_date", "-due_date", "invoice_number"):
            params = {"cursor": cursor, "sort": sort}
            assert error_fields(client.get("/api/v1/invoices", params=params, headers=headers)) == ["cursor"], sort


@pytest.mark.parametrize("cursor", TAMPERED_AMOUNT)
def test_tampered_amount_cursors_are_422(client: TestClient, world: World, cursor: str) -> None:
    for sort in ("total_amount", "-total_amount"):
        r = client.get("/api/v1/invoices", params={"cursor": cursor, "sort": sort}, headers=world.acct.headers)
        assert error_fields(r) == ["cursor"]


# --- anything unexpected is still an envelope -----------------------------------------------------


def test_an_unexpected_error_is_a_500_envelope_with_the_correlation_id(app_settings: Settings) -> None:
    app = create_app(app_settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom", headers={"X-Correlation-ID": "trace-123"})
        error = assert_error(r, 500, "INTERNAL_ERROR")
        assert "kaboom" not in r.text
        assert error["message"] == "An unexpected error occurred"
        assert r.json()["correlation_id"] == "trace-123"
        generated = client.get("/boom")
        assert generated.json()["correlation_id"]
        assert generated.json()["correlation_id"] == generated.headers["x-correlation-id"]
