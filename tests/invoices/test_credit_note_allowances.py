"""Credit notes of invoices with document-level allowances and charges (ADR 0006, EN 16931 BG-20 / BG-21):
a full credit copies them and equals the invoice; a partial credit names the ones it credits, and the
invoice is never credited more than it invoiced, in money, in any VAT group."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from invoiceflow.invoices.models import InvoiceAllowanceCharge
from tests.factories import Account, assert_error, count_rows, create_client, create_invoice, error_fields, register

LINES = [
    {"description": "Consulting", "quantity": "3", "unit_code": "HUR", "unit_price": "125.00", "vat_rate": "21"},
    {"description": "Books", "quantity": "1", "unit_price": "99.99", "vat_rate": "6"},
]
DISCOUNT = {"charge": False, "amount": "37.50", "reason": "Volume discount", "reason_code": "95", "vat_rate": "21"}
FREIGHT = {"charge": True, "amount": "15.00", "reason": "Freight", "reason_code": "FC", "vat_rate": "21"}
TOTALS = (
    "line_total_amount",
    "allowance_total_amount",
    "charge_total_amount",
    "net_amount",
    "vat_amount",
    "total_amount",
    "rounding_amount",
    "amount_due",
    "vat_breakdown",
    "allowances_charges",
)


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def invoice(client: TestClient, acct: Account) -> dict[str, Any]:
    """Sent: 21 % 375.00 - 37.50 + 15.00 = 352.50 (VAT 74.03), 6 % 99.99 (VAT 6.00); total 532.52, due 532.50."""
    buyer = create_client(client, acct)
    inv = create_invoice(
        client, acct, buyer["id"], items=LINES, allowances_charges=[DISCOUNT, FREIGHT], rounding_amount="-0.02"
    )
    r = client.patch(f"/api/v1/invoices/{inv['id']}/status", json={"status": "sent"}, headers=acct.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def credit(client: TestClient, acct: Account, invoice_id: str, body: dict[str, Any] | None = None) -> Any:
    url = f"/api/v1/invoices/{invoice_id}/credit-notes"
    if body is None:
        return client.post(url, headers=acct.headers)
    return client.post(url, json=body, headers=acct.headers)


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def stored_adjustments(db: Engine, invoice_id: str) -> list[tuple[int, bool, Decimal]]:
    with Session(db) as session:
        rows = session.scalars(
            select(InvoiceAllowanceCharge)
            .where(InvoiceAllowanceCharge.invoice_id == uuid.UUID(invoice_id))
            .order_by(InvoiceAllowanceCharge.position)
        )
        return [(row.position, row.is_charge, row.amount) for row in rows]


def test_a_full_credit_copies_the_allowances_and_equals_the_invoice(
    client: TestClient, db: Engine, acct: Account, invoice: dict[str, Any]
) -> None:
    note = created(credit(client, acct, invoice["id"]))
    assert note["kind"] == "credit_note"
    assert {k: note[k] for k in TOTALS} == {k: invoice[k] for k in TOTALS}
    assert (note["total_amount"], note["amount_due"]) == ("532.52", "532.50")
    assert [(i["quantity"], i["line_total"]) for i in note["items"]] == [("3", "375.00"), ("1", "99.99")]
    assert stored_adjustments(db, note["id"]) == [(1, False, Decimal("37.50")), (2, True, Decimal("15.00"))]
    assert client.get(f"/api/v1/invoices/{note['id']}", headers=acct.headers).json()["data"] == note
    assert_error(credit(client, acct, invoice["id"]), 409, "INVOICE_FULLY_CREDITED")


def test_crediting_lines_without_their_discount_would_over_credit(
    client: TestClient, db: Engine, acct: Account, invoice: dict[str, Any]
) -> None:
    before = count_rows(db, "invoices")
    # All three hours are 375.00 at 21 %, but only 352.50 was invoiced there after the discount.
    r = credit(client, acct, invoice["id"], {"lines": [{"position": 1}]})
    assert error_fields(r) == ["allowances_charges"]
    assert "352.50" in assert_error(r, 422)["details"]["fields"][0]["message"]
    assert count_rows(db, "invoices") == before
    # One hour is within what was invoiced: no allowances, no rounding.
    note = created(credit(client, acct, invoice["id"], {"lines": [{"position": 1, "quantity": "1"}]}))
    assert (note["net_amount"], note["vat_amount"], note["total_amount"], note["amount_due"]) == (
        "125.00",
        "26.25",
        "151.25",
        "151.25",
    )
    assert note["allowances_charges"] == []
    assert note["rounding_amount"] == "0.00"


def test_partial_credits_with_their_allowances_add_up_to_the_invoice(
    client: TestClient, db: Engine, acct: Account, invoice: dict[str, Any]
) -> None:
    first = created(
        credit(client, acct, invoice["id"], {"lines": [{"position": 1}], "allowances_charges": [{"position": 1}]})
    )
    # 375.00 - 37.50 = 337.50 at 21 % -> 70.875 -> 70.88.
    assert (first["net_amount"], first["vat_amount"], first["total_amount"]) == ("337.50", "70.88", "408.38")
    assert first["allowances_charges"] == [invoice["allowances_charges"][0]]
    assert stored_adjustments(db, first["id"]) == [(1, False, Decimal("37.50"))]
    # The rest, without naming it: books and freight.
    rest = created(credit(client, acct, invoice["id"]))
    assert [i["description"] for i in rest["items"]] == ["Books"]
    assert stored_adjustments(db, rest["id"]) == [(2, True, Decimal("15.00"))]
    assert (rest["net_amount"], rest["vat_amount"], rest["total_amount"]) == ("114.99", "9.15", "124.14")
    # Together exactly the invoice's total (the rounding amount only goes with a credit of everything at once).
    assert Decimal(first["total_amount"]) + Decimal(rest["total_amount"]) == Decimal(invoice["total_amount"])
    assert rest["rounding_amount"] == "0.00"
    assert_error(credit(client, acct, invoice["id"]), 409, "INVOICE_FULLY_CREDITED")


def test_part_of_an_allowance_and_what_remains_of_it(
    client: TestClient, acct: Account, invoice: dict[str, Any]
) -> None:
    body = {"lines": [{"position": 1, "quantity": "2"}], "allowances_charges": [{"position": 1, "amount": "25.00"}]}
    note = created(credit(client, acct, invoice["id"], body))
    assert (note["allowance_total_amount"], note["net_amount"]) == ("25.00", "225.00")
    # 12.50 of the discount remains.
    over = {"lines": [{"position": 1, "quantity": "1"}], "allowances_charges": [{"position": 1, "amount": "12.51"}]}
    r = credit(client, acct, invoice["id"], over)
    assert error_fields(r) == ["allowances_charges.0.amount"]
    assert "12.50" in assert_error(r, 422)["details"]["fields"][0]["message"]
    last_hour = created(
        credit(client, acct, invoice["id"], {"lines": [{"position": 1}], "allowances_charges": [{"position": 1}]})
    )
    assert (last_hour["allowance_total_amount"], last_hour["net_amount"]) == ("12.50", "112.50")
    r = credit(client, acct, invoice["id"], {"lines": [{"position": 2}], "allowances_charges": [{"position": 1}]})
    assert error_fields(r) == ["allowances_charges.0.position"]


def test_a_cancelled_credit_note_frees_its_allowances(
    client: TestClient, acct: Account, invoice: dict[str, Any]
) -> None:
    note = created(credit(client, acct, invoice["id"]))
    r = client.patch(f"/api/v1/invoices/{note['id']}/status", json={"status": "cancelled"}, headers=acct.headers)
    assert r.status_code == 200, r.text
    again = created(credit(client, acct, invoice["id"]))
    assert {k: again[k] for k in TOTALS} == {k: invoice[k] for k in TOTALS}


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("allowances without lines", {"allowances_charges": [{"position": 1}]}, "allowances_charges"),
    (
        "no such allowance",
        {"lines": [{"position": 1}], "allowances_charges": [{"position": 3}]},
        "allowances_charges.0.position",
    ),
    (
        "named twice",
        {"lines": [{"position": 1}], "allowances_charges": [{"position": 1}, {"position": 1}]},
        "allowances_charges.1.position",
    ),
    (
        "more than the allowance",
        {"lines": [{"position": 1}], "allowances_charges": [{"position": 1, "amount": "37.51"}]},
        "allowances_charges.0.amount",
    ),
    (
        "zero amount",
        {"lines": [{"position": 1}], "allowances_charges": [{"position": 1, "amount": "0"}]},
        "allowances_charges.0.amount",
    ),
    (
        "below a cent",
        {"lines": [{"position": 1}], "allowances_charges": [{"position": 1, "amount": "0.001"}]},
        "allowances_charges.0.amount",
    ),
    (
        # 0.1 hour is 12.50, less than the 37.50 discount credited with it.
        "a negative VAT group",
        {"lines": [{"position": 1, "quantity": "0.1"}], "allowances_charges": [{"position": 1}]},
        "allowances_charges.0.amount",
    ),
    (
        "a discount on books that have none",
        {"lines": [{"position": 2}], "allowances_charges": [{"position": 1}]},
        "allowances_charges.0.vat_rate",
    ),
]


@pytest.mark.parametrize(("case", "body", "field"), REFUSED, ids=[c for c, _, _ in REFUSED])
def test_refusals_name_the_field(
    client: TestClient, db: Engine, acct: Account, invoice: dict[str, Any], case: str, body: dict[str, Any], field: str
) -> None:
    before = count_rows(db, "invoices")
    assert error_fields(credit(client, acct, invoice["id"], body)) == [field], case
    assert count_rows(db, "invoices") == before


def test_a_freight_charge_may_be_credited_with_some_lines(
    client: TestClient, acct: Account, invoice: dict[str, Any]
) -> None:
    body = {"lines": [{"position": 2}], "allowances_charges": [{"position": 2, "amount": "5.00"}]}
    note = created(credit(client, acct, invoice["id"], body))
    assert [(g["vat_rate"], g["taxable_amount"], g["vat_amount"]) for g in note["vat_breakdown"]] == [
        ("21", "5.00", "1.05"),
        ("6", "99.99", "6.00"),
    ]
    assert note["total_amount"] == "112.04"
