"""POST /invoices/{id}/credit-notes: full and partial credits, their own gapless series, the reference to the
credited invoice in the API, the PDF and the UBL CreditNote."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from invoiceflow.core.tax import LineInput, compute_totals
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.schemas import InvoiceSummary
from tests.factories import (
    PASSWORD,
    Account,
    assert_error,
    audit_rows,
    client_payload,
    count_rows,
    create_client,
    create_invoice,
    error_fields,
    event_rows,
    register,
    utc_today,
)
from tests.servers import run_server

CN_TABLES = ("invoices", "invoice_lines", "events", "audit_logs", "idempotency_keys", "number_sequences")


def credit_url(invoice_id: str) -> str:
    return f"/api/v1/invoices/{invoice_id}/credit-notes"


def set_status(client: TestClient, acct: Account, invoice_id: str, status: str) -> dict[str, Any]:
    r = client.patch(f"/api/v1/invoices/{invoice_id}/status", json={"status": status}, headers=acct.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def credit(client: TestClient, acct: Account, invoice_id: str, body: Any = None, **headers: str) -> Any:
    if body is None:
        return client.post(credit_url(invoice_id), headers={**acct.headers, **headers})
    return client.post(credit_url(invoice_id), json=body, headers={**acct.headers, **headers})


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def cn(n: int) -> str:
    return f"CN-{utc_today().year}-{n:05d}"


def rows(db: Engine) -> dict[str, int]:
    return {table: count_rows(db, table) for table in CN_TABLES}


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def buyer_id(client: TestClient, acct: Account) -> str:
    return str(create_client(client, acct)["id"])


@pytest.fixture
def sent(client: TestClient, acct: Account, buyer_id: str) -> dict[str, Any]:
    """A sent invoice: Consulting 3 h × 125.00 at 21 %, Licence 1 × 99.99 at 6 %."""
    invoice = create_invoice(client, acct, buyer_id, buyer_reference="PO-42")
    return set_status(client, acct, invoice["id"], "sent")


# --- Full credit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {"lines": None}], ids=["no-body", "lines-null"])
def test_a_full_credit_mirrors_the_invoice(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, sent: dict[str, Any], body: Any
) -> None:
    note = created(credit(client, acct, sent["id"], body))

    assert note["kind"] == "credit_note"
    assert note["invoice_number"] == cn(1)
    assert note["credited_invoice_id"] == sent["id"]
    assert note["status"] == "draft"
    assert note["allowed_transitions"] == ["sent", "cancelled"]
    assert note["id"] != sent["id"]
    for field in ("client_id", "currency", "net_amount", "vat_amount", "total_amount", "items", "vat_breakdown"):
        assert note[field] == sent[field], field
    assert note["amount_due"] == sent["total_amount"]
    assert note["buyer_reference"] == "PO-42"
    assert client.get(f"/api/v1/invoices/{note['id']}", headers=acct.headers).json()["data"] == note

    [event] = event_rows(db, type="CreditNoteCreated")
    assert event.resource_id == note["id"]
    assert event.payload["invoice_number"] == cn(1)
    assert event.payload["credited_invoice_id"] == sent["id"]
    assert event.payload["credited_invoice_number"] == sent["invoice_number"]
    assert event.payload["total_amount"] == sent["total_amount"]
    [audit] = audit_rows(db, action="credit_note.create")
    assert audit.resource_id == note["id"]
    assert str(audit.actor_user_id) == acct.user_id
    # The original is untouched, and the invoice series goes on without a gap.
    assert client.get(f"/api/v1/invoices/{sent['id']}", headers=acct.headers).json()["data"] == sent
    year = utc_today().year
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{year}-00002"
    assert len(event_rows(db, type="InvoiceCreated")) == 2


def test_paid_and_overdue_invoices_can_be_credited(client: TestClient, acct: Account, buyer_id: str) -> None:
    paid = create_invoice(client, acct, buyer_id)
    set_status(client, acct, paid["id"], "sent")
    set_status(client, acct, paid["id"], "paid")
    overdue = create_invoice(client, acct, buyer_id)
    set_status(client, acct, overdue["id"], "sent")
    set_status(client, acct, overdue["id"], "overdue")
    assert created(credit(client, acct, paid["id"]))["invoice_number"] == cn(1)
    assert created(credit(client, acct, overdue["id"]))["invoice_number"] == cn(2)


# --- Partial credits ---------------------------------------------------------------------------------


def test_partial_credits_never_exceed_what_was_invoiced(
    client: TestClient, db: Engine, acct: Account, sent: dict[str, Any]
) -> None:
    first = created(credit(client, acct, sent["id"], {"lines": [{"position": 1, "quantity": "1.5"}]}))
    expected = compute_totals([LineInput(Decimal("1.5"), Decimal("125.00"), "S", Decimal("21"))], "EUR")
    assert (first["net_amount"], first["vat_amount"], first["total_amount"]) == (
        str(expected.net_amount),
        str(expected.vat_amount),
        str(expected.total_amount),
    )
    assert (first["net_amount"], first["vat_amount"], first["total_amount"]) == ("187.50", "39.38", "226.88")
    [item] = first["items"]
    assert (item["description"], item["quantity"], item["unit_price"], item["vat_rate"]) == (
        "Consulting",
        "1.5",
        "125.00",
        "21",
    )

    before = rows(db)
    too_much = credit(client, acct, sent["id"], {"lines": [{"position": 1, "quantity": "1.6"}]})
    assert error_fields(too_much) == ["lines.0.quantity"]
    assert "1.5" in too_much.json()["error"]["message"]
    assert rows(db) == before

    # No quantity: what remains of the line.
    rest = created(credit(client, acct, sent["id"], {"lines": [{"position": 1}]}))
    assert rest["invoice_number"] == cn(2)
    assert rest["items"][0]["quantity"] == "1.5"
    assert error_fields(credit(client, acct, sent["id"], {"lines": [{"position": 1}]})) == ["lines.0.position"]

    # A full credit now takes only what remains: the Licence line.
    last = created(credit(client, acct, sent["id"]))
    assert [i["description"] for i in last["items"]] == ["Licence"]
    assert last["total_amount"] == "105.99"
    assert_error(credit(client, acct, sent["id"]), 409, "INVOICE_FULLY_CREDITED")

    # A cancelled credit note gives its quantities back.
    set_status(client, acct, rest["id"], "cancelled")
    again = created(credit(client, acct, sent["id"], {"lines": [{"position": 1, "quantity": "1.5"}]}))
    assert again["invoice_number"] == cn(4)


def test_several_lines_in_one_credit_note(client: TestClient, acct: Account, sent: dict[str, Any]) -> None:
    body = {"lines": [{"position": 2}, {"position": 1, "quantity": "0.25"}]}
    note = created(credit(client, acct, sent["id"], body))
    # The credit note keeps the credited invoice's line order.
    assert [(i["description"], i["quantity"]) for i in note["items"]] == [("Consulting", "0.25"), ("Licence", "1")]
    assert note["net_amount"] == "131.24"  # 31.25 + 99.99


# --- Refusals ----------------------------------------------------------------------------------------


def test_only_issued_invoices_can_be_credited(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    draft = create_invoice(client, acct, buyer_id)
    cancelled = create_invoice(client, acct, buyer_id)
    set_status(client, acct, cancelled["id"], "cancelled")
    before = rows(db)
    for invoice, status in ((draft, "draft"), (cancelled, "cancelled")):
        error = assert_error(credit(client, acct, invoice["id"]), 409, "INVOICE_NOT_CREDITABLE")
        assert error["details"]["status"] == status
        assert error["details"]["creditable_statuses"] == ["overdue", "paid", "sent"]
    assert rows(db) == before


def test_a_credit_note_cannot_be_credited_or_edited(
    client: TestClient, db: Engine, acct: Account, sent: dict[str, Any]
) -> None:
    note = created(credit(client, acct, sent["id"]))
    set_status(client, acct, note["id"], "sent")
    before = rows(db)
    assert_error(credit(client, acct, note["id"]), 409, "CREDIT_NOTE_NOT_CREDITABLE")
    r = client.patch(f"/api/v1/invoices/{note['id']}", json={"notes": "changed"}, headers=acct.headers)
    assert_error(r, 409, "CREDIT_NOTE_NOT_EDITABLE")
    assert rows(db) == before


def test_a_credit_note_is_never_overdue(client: TestClient, acct: Account, sent: dict[str, Any]) -> None:
    note = created(credit(client, acct, sent["id"]))
    assert set_status(client, acct, note["id"], "sent")["allowed_transitions"] == ["paid"]
    r = client.patch(f"/api/v1/invoices/{note['id']}/status", json={"status": "overdue"}, headers=acct.headers)
    assert_error(r, 409)
    paid = set_status(client, acct, note["id"], "paid")
    assert (paid["amount_due"], paid["allowed_transitions"]) == ("0.00", [])


def test_a_sent_credit_note_past_its_due_date_is_not_listed_as_overdue(
    client: TestClient, db: Engine, acct: Account, sent: dict[str, Any]
) -> None:
    note = created(credit(client, acct, sent["id"]))
    set_status(client, acct, note["id"], "sent")
    with Session(db) as session:  # both were issued today: move their due dates into the past
        session.execute(
            update(Invoice)
            .where(Invoice.id.in_([uuid.UUID(note["id"]), uuid.UUID(sent["id"])]))
            .values(due_date=date.today() - timedelta(days=3))
        )
        session.commit()
    overdue = client.get("/api/v1/invoices?overdue=true", headers=acct.headers).json()["data"]["items"]
    assert [item["id"] for item in overdue] == [sent["id"]]
    current = client.get("/api/v1/invoices?overdue=false", headers=acct.headers).json()["data"]["items"]
    assert note["id"] in [item["id"] for item in current]


def test_another_organisations_invoice_is_404_and_no_token_is_401(
    client: TestClient, db: Engine, sent: dict[str, Any]
) -> None:
    intruder = register(client, org="Intruder BV")
    before = rows(db)
    assert_error(credit(client, intruder, sent["id"]), 404, "INVOICE_NOT_FOUND")
    assert_error(credit(client, intruder, str(uuid.uuid4())), 404, "INVOICE_NOT_FOUND")
    assert_error(client.post(credit_url(sent["id"])), 401)
    assert rows(db) == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"lines": [{"position": 1, "quantity": "-1"}]}, ["lines.0.quantity"]),
        ({"lines": [{"position": 1, "quantity": "0"}]}, ["lines.0.quantity"]),
        ({"lines": [{"position": 1, "quantity": "abc"}]}, ["lines.0.quantity"]),
        ({"lines": [{"position": 3}]}, ["lines.0.position"]),
        ({"lines": [{"position": 0}]}, ["lines.0.position"]),
        ({"lines": [{"position": 1}, {"position": 1}]}, ["lines.1.position"]),
        ({"lines": [{"quantity": "1"}]}, ["lines.0.position"]),
        ({"lines": [{"position": 1, "unit_price": "1"}]}, ["lines.0.unit_price"]),
        ({"lines": []}, ["lines"]),
        ({"reason": "typo"}, ["reason"]),
        ([{"position": 1}], ["body"]),
    ],
)
def test_invalid_bodies_are_422_and_write_nothing(
    client: TestClient, db: Engine, acct: Account, sent: dict[str, Any], body: Any, fields: list[str]
) -> None:
    before = rows(db)
    assert error_fields(credit(client, acct, sent["id"], body)) == fields
    assert rows(db) == before


# --- Idempotency, settings, lists --------------------------------------------------------------------


def test_an_idempotency_key_replays_the_same_credit_note(
    client: TestClient, db: Engine, acct: Account, sent: dict[str, Any]
) -> None:
    body = {"lines": [{"position": 1, "quantity": "1"}]}
    first = credit(client, acct, sent["id"], body, **{"Idempotency-Key": "cn-1"})
    second = credit(client, acct, sent["id"], body, **{"Idempotency-Key": "cn-1"})
    assert created(second) == created(first)
    assert second.headers["idempotent-replayed"] == "true"
    assert len(event_rows(db, type="CreditNoteCreated")) == 1
    other = credit(
        client, acct, sent["id"], {"lines": [{"position": 1, "quantity": "2"}]}, **{"Idempotency-Key": "cn-1"}
    )
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    # The replay took no number, and no quantity: 2 of the 3 hours are still creditable.
    assert created(credit(client, acct, sent["id"], {"lines": [{"position": 1}]}))["invoice_number"] == cn(2)


def test_the_credit_note_pattern_is_an_organisation_setting(
    client: TestClient, acct: Account, sent: dict[str, Any]
) -> None:
    org = client.get("/api/v1/organization", headers=acct.headers).json()["data"]
    assert org["credit_note_number_pattern"] == "CN-{YYYY}-{SEQ:05}"
    r = client.patch("/api/v1/organization", json={"credit_note_number_pattern": "CN {SEQ}"}, headers=acct.headers)
    assert error_fields(r) == ["credit_note_number_pattern"]
    r = client.patch("/api/v1/organization", json={"credit_note_number_pattern": None}, headers=acct.headers)
    assert error_fields(r) == ["credit_note_number_pattern"]
    r = client.patch(
        "/api/v1/organization", json={"credit_note_number_pattern": "AV{YY}-{SEQ:03}"}, headers=acct.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["credit_note_number_pattern"] == "AV{YY}-{SEQ:03}"
    note = created(credit(client, acct, sent["id"]))
    assert note["invoice_number"] == f"AV{utc_today().year % 100:02d}-001"


def test_lists_filter_by_kind_and_render_credit_notes_like_their_own_get(
    client: TestClient, acct: Account, sent: dict[str, Any]
) -> None:
    draft_note = created(credit(client, acct, sent["id"], {"lines": [{"position": 2}]}))
    sent_note = created(credit(client, acct, sent["id"], {"lines": [{"position": 1, "quantity": "0.5"}]}))
    set_status(client, acct, sent_note["id"], "sent")

    def listed(query: str) -> list[dict[str, Any]]:
        r = client.get(f"/api/v1/invoices?{query}", headers=acct.headers)
        assert r.status_code == 200, r.text
        return r.json()["data"]["items"]  # type: ignore[no-any-return]

    assert {i["id"] for i in listed("kind=credit_note")} == {draft_note["id"], sent_note["id"]}
    assert [i["id"] for i in listed("kind=invoice")] == [sent["id"]]
    assert error_fields(client.get("/api/v1/invoices?kind=debit_note", headers=acct.headers)) == ["kind"]
    items = listed("limit=10")
    assert len(items) == 3
    for item in items:
        full = client.get(f"/api/v1/invoices/{item['id']}", headers=acct.headers).json()["data"]
        assert item == {key: full[key] for key in InvoiceSummary.model_fields}
    by_id = {i["id"]: i for i in items}
    assert by_id[sent_note["id"]]["allowed_transitions"] == ["paid"]
    assert by_id[sent["id"]]["kind"] == "invoice"
    assert by_id[sent["id"]]["credited_invoice_id"] is None


# --- Concurrency (PostgreSQL, a real server) ----------------------------------------------------------


@pytest.fixture(scope="module")
def pg_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrency across processes needs PostgreSQL")
    with run_server(database_url=database_url, data_dir=tmp_path_factory.mktemp("cn-server"), workers=2) as base:
        yield base


async def _credit_all(base: str, headers: dict[str, str], invoice_id: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        start = asyncio.Event()

        async def post() -> httpx.Response:
            await start.wait()  # release them together
            body = {"lines": [{"position": 1, "quantity": "1"}]}
            return await http.post(credit_url(invoice_id), json=body, headers=headers)

        tasks = [asyncio.ensure_future(post()) for _ in range(count)]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*tasks)


@pytest.mark.slow
def test_concurrent_credit_notes_get_consecutive_numbers_and_never_over_credit(
    pg_server: str, client: TestClient
) -> None:
    with httpx.Client(base_url=pg_server, timeout=30) as http:
        r = http.post(
            "/api/v1/auth/register",
            json={
                "email": f"cn-{uuid.uuid4().hex[:10]}@example.com",
                "password": PASSWORD,
                "name": "Owner",
                "organization_name": "Credit BV",
            },
        )
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['data']['tokens']['access_token']}"}
        buyer = http.post("/api/v1/clients", json=client_payload(), headers=headers).json()["data"]
        today = utc_today().isoformat()
        body = {
            "client_id": buyer["id"],
            "issue_date": today,
            "due_date": today,
            "items": [{"description": "Seats", "quantity": "10", "unit_price": "10.00", "vat_rate": "21"}],
        }
        invoice = http.post("/api/v1/invoices", json=body, headers=headers).json()["data"]
        r = http.patch(f"/api/v1/invoices/{invoice['id']}/status", json={"status": "sent"}, headers=headers)
        assert r.status_code == 200, r.text

    # 12 credits of 1 seat each against 10 seats: exactly 10 succeed, numbered 1..10 without a gap.
    responses = asyncio.run(_credit_all(pg_server, headers, invoice["id"], 12))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [422] * 2, [r.text for r in responses if r.status_code not in (201, 422)]
    numbers = sorted(r.json()["data"]["invoice_number"] for r in responses if r.status_code == 201)
    assert numbers == [cn(n) for n in range(1, 11)]
    refused = [r.json()["error"]["details"]["fields"][0]["field"] for r in responses if r.status_code == 422]
    assert refused == ["lines.0.position", "lines.0.position"]
