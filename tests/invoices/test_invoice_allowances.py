"""Document-level allowances and charges (EN 16931 BG-20 / BG-21) and the rounding amount (BT-114) on
invoices through the API: totals to the cent, the stored rows, every refusal naming its field, drafts only."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from invoiceflow.invoices.models import Invoice, InvoiceAllowanceCharge
from tests.factories import (
    Account,
    assert_error,
    count_rows,
    create_client,
    create_invoice,
    create_order,
    error_fields,
    invoice_payload,
    register,
)

URL = "/api/v1/invoices"

LINES = [
    {"description": "Consulting", "quantity": "3", "unit_code": "HUR", "unit_price": "125.00", "vat_rate": "21"},
    {"description": "Books", "quantity": "1", "unit_price": "99.99", "vat_rate": "6"},
]
DISCOUNT = {"charge": False, "amount": "37.50", "reason": "Volume discount", "reason_code": "95", "vat_rate": "21"}
FREIGHT = {"charge": True, "amount": "15.00", "reason": "Freight", "reason_code": "FC", "vat_rate": "21"}


def item(charge: bool, amount: str, rate: str = "21", category: str = "S", **extra: Any) -> dict[str, Any]:
    return {
        "charge": charge,
        "amount": amount,
        "reason": "Freight" if charge else "Discount",
        "vat_category": category,
        "vat_rate": rate,
        **extra,
    }


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def buyer_id(client: TestClient, acct: Account) -> str:
    return str(create_client(client, acct)["id"])


def stored(db: Engine, invoice_id: str) -> tuple[Invoice, list[InvoiceAllowanceCharge]]:
    with Session(db) as session:
        invoice = session.scalars(select(Invoice).where(Invoice.id == uuid.UUID(invoice_id))).one()
        rows = list(
            session.scalars(
                select(InvoiceAllowanceCharge)
                .where(InvoiceAllowanceCharge.invoice_id == invoice.id)
                .order_by(InvoiceAllowanceCharge.position)
            )
        )
        session.expunge_all()
        return invoice, rows


def money(inv: dict[str, Any]) -> dict[str, str]:
    keys = (
        "line_total_amount",
        "allowance_total_amount",
        "charge_total_amount",
        "net_amount",
        "vat_amount",
        "total_amount",
        "amount_paid",
        "rounding_amount",
        "amount_due",
    )
    return {key: inv[key] for key in keys}


def breakdown(inv: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(g["vat_category"], g["vat_rate"], g["taxable_amount"], g["vat_amount"]) for g in inv["vat_breakdown"]]


@pytest.mark.parametrize("path", ["standalone", "idempotent", "external_id"])
def test_create_with_a_discount_freight_and_rounding_to_the_cent(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, path: str
) -> None:
    """The three create paths (ADR 0004's single statement on PostgreSQL, and the transactional ones) store the
    same rows and answer the same amounts."""
    headers = dict(acct.headers)
    extra: dict[str, Any] = {}
    if path == "idempotent":
        headers["Idempotency-Key"] = f"key-{uuid.uuid4()}"
    if path == "external_id":
        extra["external_id"] = "ERP-1"
    body = invoice_payload(
        buyer_id, items=LINES, allowances_charges=[DISCOUNT, FREIGHT], rounding_amount="-0.02", **extra
    )
    r = client.post(URL, json=body, headers=headers)
    assert r.status_code == 201, r.text
    inv = r.json()["data"]
    # 21 %: 375.00 - 37.50 + 15.00 = 352.50 -> VAT 74.025 -> 74.03; 6 %: 99.99 -> 5.9994 -> 6.00.
    assert breakdown(inv) == [("S", "21", "352.50", "74.03"), ("S", "6", "99.99", "6.00")]
    assert money(inv) == {
        "line_total_amount": "474.99",
        "allowance_total_amount": "37.50",
        "charge_total_amount": "15.00",
        "net_amount": "452.49",
        "vat_amount": "80.03",
        "total_amount": "532.52",
        "amount_paid": "0.00",
        "rounding_amount": "-0.02",
        "amount_due": "532.50",
    }
    assert inv["allowances_charges"] == [
        {
            "charge": False,
            "amount": "37.50",
            "reason": "Volume discount",
            "reason_code": "95",
            "vat_category": "S",
            "vat_rate": "21",
            "vat_exemption_reason": None,
        },
        {
            "charge": True,
            "amount": "15.00",
            "reason": "Freight",
            "reason_code": "FC",
            "vat_category": "S",
            "vat_rate": "21",
            "vat_exemption_reason": None,
        },
    ]
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"] == inv

    invoice, rows = stored(db, inv["id"])
    assert (invoice.net_amount, invoice.vat_amount, invoice.total_amount, invoice.rounding_amount) == (
        Decimal("452.49"),
        Decimal("80.03"),
        Decimal("532.52"),
        Decimal("-0.02"),
    )
    assert [(r.position, r.is_charge, r.amount, r.reason, r.reason_code, r.vat_category, r.vat_rate) for r in rows] == [
        (1, False, Decimal("37.50"), "Volume discount", "95", "S", Decimal("21")),
        (2, True, Decimal("15.00"), "Freight", "FC", "S", Decimal("21")),
    ]


def test_an_invoice_without_allowances_is_unchanged(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES)
    assert inv["allowances_charges"] == []
    assert money(inv) == {
        "line_total_amount": "474.99",
        "allowance_total_amount": "0.00",
        "charge_total_amount": "0.00",
        "net_amount": "474.99",
        "vat_amount": "84.75",
        "total_amount": "559.74",
        "amount_paid": "0.00",
        "rounding_amount": "0.00",
        "amount_due": "559.74",
    }
    assert stored(db, inv["id"])[1] == []


def test_yen_and_dinar_amounts(client: TestClient, acct: Account, buyer_id: str) -> None:
    yen = create_invoice(
        client,
        acct,
        buyer_id,
        currency="JPY",
        items=[{"description": "x", "quantity": "3", "unit_price": "333.5", "vat_rate": "10"}],
        allowances_charges=[item(False, "101", "10"), item(True, "550", "10")],
        rounding_amount="-1",
    )
    # 1001 - 101 + 550 = 1450 -> VAT 145; due 1595 - 1.
    assert breakdown(yen) == [("S", "10", "1450", "145")]
    assert (yen["net_amount"], yen["total_amount"], yen["rounding_amount"], yen["amount_due"]) == (
        "1450",
        "1595",
        "-1",
        "1594",
    )
    dinar = create_invoice(
        client,
        acct,
        buyer_id,
        currency="BHD",
        items=[{"description": "x", "quantity": "2", "unit_price": "1.2345", "vat_rate": "10"}],
        allowances_charges=[item(False, "0.469", "10")],
        rounding_amount="0.003",
    )
    # 2.469 - 0.469 = 2.000 -> VAT 0.200; due 2.200 + 0.003.
    assert breakdown(dinar) == [("S", "10", "2.000", "0.200")]
    assert (dinar["allowance_total_amount"], dinar["total_amount"], dinar["amount_due"]) == ("0.469", "2.200", "2.203")


def test_a_charge_may_open_a_vat_group_and_an_allowance_may_then_reduce_it(
    client: TestClient, acct: Account, buyer_id: str
) -> None:
    inv = create_invoice(
        client,
        acct,
        buyer_id,
        items=[{"description": "Books", "quantity": "2", "unit_price": "10.00", "vat_rate": "9"}],
        allowances_charges=[
            item(True, "10.00"),
            item(False, "2.50"),
            item(True, "5", "0", "E", vat_exemption_reason="Art. 132"),
        ],
    )
    assert breakdown(inv) == [("E", "0", "5.00", "0.00"), ("S", "21", "7.50", "1.58"), ("S", "9", "20.00", "1.80")]
    assert (inv["net_amount"], inv["vat_amount"], inv["total_amount"]) == ("32.50", "3.38", "35.88")


def test_an_allowance_may_bring_a_group_to_exactly_zero(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES, allowances_charges=[item(False, "99.99", "6")])
    assert breakdown(inv) == [("S", "21", "375.00", "78.75"), ("S", "6", "0.00", "0.00")]
    assert inv["total_amount"] == "453.75"


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    (
        "no reason nor code",
        {"allowances_charges": [{"charge": False, "amount": "1", "vat_rate": "21"}]},
        "allowances_charges.0.reason_code",
    ),
    (
        "charge code on an allowance",
        {"allowances_charges": [item(False, "1", reason_code="FC")]},
        "allowances_charges.0.reason_code",
    ),
    (
        "allowance code on a charge",
        {"allowances_charges": [item(True, "1", reason_code="95")]},
        "allowances_charges.0.reason_code",
    ),
    ("unknown code", {"allowances_charges": [item(True, "1", reason_code="XX")]}, "allowances_charges.0.reason_code"),
    ("blank reason", {"allowances_charges": [item(True, "1", reason="")]}, "allowances_charges.0.reason"),
    ("zero amount", {"allowances_charges": [item(False, "0")]}, "allowances_charges.0.amount"),
    ("negative amount", {"allowances_charges": [item(True, "-5")]}, "allowances_charges.0.amount"),
    ("float amount", {"allowances_charges": [item(True, 5.5)]}, "allowances_charges.0.amount"),
    ("five decimals", {"allowances_charges": [item(True, "0.00001")]}, "allowances_charges.0.amount"),
    ("cents in EUR only", {"allowances_charges": [item(True, "0.001")]}, "allowances_charges.0.amount"),
    (
        "charge flag as text",
        {"allowances_charges": [item(True, "1") | {"charge": "true"}]},
        "allowances_charges.0.charge",
    ),
    (
        "charge flag missing",
        {"allowances_charges": [{"amount": "1", "reason": "x", "vat_rate": "21"}]},
        "allowances_charges.0.charge",
    ),
    ("S at 0 %", {"allowances_charges": [item(True, "1", "0")]}, "allowances_charges.0.vat_rate"),
    ("Z at 21 %", {"allowances_charges": [item(True, "1", "21", "Z")]}, "allowances_charges.0.vat_rate"),
    ("unknown category", {"allowances_charges": [item(True, "1", "0", "X")]}, "allowances_charges.0.vat_category"),
    (
        "allowance in a group nobody has",
        {"allowances_charges": [item(False, "1", "9")]},
        "allowances_charges.0.vat_rate",
    ),
    (
        "allowance larger than its group",
        {"allowances_charges": [item(False, "100.00", "6")]},
        "allowances_charges.0.amount",
    ),
    (
        "second allowance tips it",
        {"allowances_charges": [item(False, "50", "6"), item(False, "50", "6")]},
        "allowances_charges.0.amount",
    ),
    ("unknown field", {"allowances_charges": [item(True, "1") | {"percent": "5"}]}, "allowances_charges.0.percent"),
    ("too many", {"allowances_charges": [item(True, "1")] * 101}, "allowances_charges"),
    ("rounding above 1", {"rounding_amount": "1.01"}, "rounding_amount"),
    ("rounding below -1", {"rounding_amount": "-1.5"}, "rounding_amount"),
    ("rounding as a float", {"rounding_amount": 0.5}, "rounding_amount"),
    ("rounding below a cent", {"rounding_amount": "0.005"}, "rounding_amount"),
]


@pytest.mark.parametrize(("case", "body", "field"), REFUSED, ids=[c for c, _, _ in REFUSED])
def test_refusals_name_the_field_and_store_nothing(
    client: TestClient, db: Engine, acct: Account, buyer_id: str, case: str, body: dict[str, Any], field: str
) -> None:
    r = client.post(URL, json=invoice_payload(buyer_id, items=LINES, **body), headers=acct.headers)
    assert error_fields(r) == [field], case
    assert count_rows(db, "invoices") == 0
    assert count_rows(db, "invoice_allowance_charges") == 0


def test_a_document_total_of_zero_is_refused(client: TestClient, acct: Account, buyer_id: str) -> None:
    zero_rated = [{"description": "Export", "quantity": "1", "unit_price": "100", "vat_category": "Z", "vat_rate": "0"}]
    r = client.post(
        URL,
        json=invoice_payload(buyer_id, items=zero_rated, allowances_charges=[item(False, "100", "0", "Z")]),
        headers=acct.headers,
    )
    assert error_fields(r) == ["allowances_charges"]


def test_rounding_may_not_make_the_amount_due_negative(client: TestClient, acct: Account, buyer_id: str) -> None:
    cheap = [{"description": "Stamp", "quantity": "1", "unit_price": "0.40", "vat_category": "Z", "vat_rate": "0"}]
    r = client.post(URL, json=invoice_payload(buyer_id, items=cheap, rounding_amount="-0.50"), headers=acct.headers)
    assert error_fields(r) == ["rounding_amount"]
    inv = create_invoice(client, acct, buyer_id, items=cheap, rounding_amount="-0.40")
    assert inv["amount_due"] == "0.00"


def test_rounding_of_minus_zero_reads_as_zero(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES, rounding_amount="-0.00")
    assert inv["rounding_amount"] == "0.00"


# --- update (drafts only) -------------------------------------------------------------------------


def patch(client: TestClient, acct: Account, invoice_id: str, body: dict[str, Any]) -> Any:
    return client.patch(f"{URL}/{invoice_id}", json=body, headers=acct.headers)


def test_update_replaces_the_allowances_and_recomputes_the_totals(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES, allowances_charges=[DISCOUNT, FREIGHT])
    first_ids = {row.id for row in stored(db, inv["id"])[1]}

    r = patch(client, acct, inv["id"], {"allowances_charges": [item(False, "9.99", "6")], "rounding_amount": "0.01"})
    assert r.status_code == 200, r.text
    updated = r.json()["data"]
    # 6 %: 99.99 - 9.99 = 90.00 -> 5.40.
    assert breakdown(updated) == [("S", "21", "375.00", "78.75"), ("S", "6", "90.00", "5.40")]
    assert (updated["net_amount"], updated["total_amount"], updated["amount_due"]) == ("465.00", "549.15", "549.16")
    assert updated["items"] == inv["items"]
    invoice, rows = stored(db, inv["id"])
    assert [(r.position, r.is_charge, r.amount, r.vat_rate) for r in rows] == [
        (1, False, Decimal("9.99"), Decimal("6"))
    ]
    assert not first_ids & {r.id for r in rows}
    assert (invoice.net_amount, invoice.total_amount, invoice.rounding_amount) == (
        Decimal("465.00"),
        Decimal("549.15"),
        Decimal("0.01"),
    )
    assert client.get(f"{URL}/{inv['id']}", headers=acct.headers).json()["data"] == updated

    # Other changes keep them; [] removes them.
    r = patch(client, acct, inv["id"], {"notes": "n"})
    assert r.json()["data"]["allowances_charges"] == updated["allowances_charges"]
    r = patch(client, acct, inv["id"], {"allowances_charges": []})
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["net_amount"], r.json()["data"]["allowances_charges"]) == ("474.99", [])
    assert count_rows(db, "invoice_allowance_charges") == 0


def test_new_lines_are_checked_against_the_kept_allowances(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES, allowances_charges=[DISCOUNT])
    cheaper = [{**LINES[0], "quantity": "0.25"}, LINES[1]]  # 31.25 at 21 %, less than the 37.50 discount
    assert error_fields(patch(client, acct, inv["id"], {"items": cheaper})) == ["allowances_charges.0.amount"]
    only_books = [LINES[1]]
    assert error_fields(patch(client, acct, inv["id"], {"items": only_books})) == ["allowances_charges.0.vat_rate"]


def test_a_currency_change_rechecks_the_amounts(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES, allowances_charges=[DISCOUNT], rounding_amount="0.02")
    assert error_fields(patch(client, acct, inv["id"], {"currency": "JPY"})) == ["allowances_charges.0.amount"]
    ok = patch(
        client, acct, inv["id"], {"currency": "JPY", "allowances_charges": [item(False, "38")], "rounding_amount": "0"}
    )
    assert ok.status_code == 200, ok.text
    assert (ok.json()["data"]["allowance_total_amount"], ok.json()["data"]["net_amount"]) == ("38", "437")


@pytest.mark.parametrize("field", ["allowances_charges", "rounding_amount"])
def test_null_is_refused(client: TestClient, acct: Account, buyer_id: str, field: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES)
    assert error_fields(patch(client, acct, inv["id"], {field: None})) == [field]


def test_update_four_cases(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES)
    body = {"allowances_charges": [DISCOUNT]}
    assert_error(client.patch(f"{URL}/{inv['id']}", json=body), 401)
    stranger = register(client, org="Stranger")
    assert_error(patch(client, stranger, inv["id"], body), 404)
    assert error_fields(patch(client, acct, inv["id"], {"allowances_charges": [item(False, "x")]})) == [
        "allowances_charges.0.amount"
    ]
    assert patch(client, acct, inv["id"], body).status_code == 200


def test_a_sent_invoice_keeps_its_allowances(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES, allowances_charges=[DISCOUNT])
    assert client.patch(f"{URL}/{inv['id']}/status", json={"status": "sent"}, headers=acct.headers).status_code == 200
    r = patch(client, acct, inv["id"], {"allowances_charges": []})
    assert_error(r, 409, "INVOICE_NOT_EDITABLE")
    r = patch(client, acct, inv["id"], {"rounding_amount": "0.01"})
    assert_error(r, 409, "INVOICE_NOT_EDITABLE")
    assert len(stored(db, inv["id"])[1]) == 1


def test_paid_settles_the_amount_due_with_its_rounding(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=LINES, allowances_charges=[DISCOUNT], rounding_amount="-0.03")
    for status in ("sent", "paid"):
        r = client.patch(f"{URL}/{inv['id']}/status", json={"status": status}, headers=acct.headers)
        assert r.status_code == 200, r.text
    paid = r.json()["data"]
    # 337.50 + 99.99 = 437.49; VAT 70.88 + 6.00; total 514.37, due 514.34.
    assert (paid["total_amount"], paid["amount_paid"], paid["amount_due"]) == ("514.37", "514.34", "0.00")


def test_rows_go_with_their_invoice(client: TestClient, db: Engine, acct: Account, buyer_id: str) -> None:
    """The foreign key cascades: removing an invoice row removes its allowances and charges."""
    keep = create_invoice(client, acct, buyer_id, items=LINES, allowances_charges=[FREIGHT])
    gone = create_invoice(client, acct, buyer_id, items=LINES, allowances_charges=[DISCOUNT, FREIGHT])
    with db.connect() as conn:
        if db.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")  # as the app's engine does (core/db.configure_sqlite)
        conn.execute(delete(Invoice).where(Invoice.id == uuid.UUID(gone["id"])))
        conn.commit()
    assert count_rows(db, "invoice_allowance_charges") == 1
    assert len(stored(db, keep["id"])[1]) == 1


def test_an_order_is_invoiced_without_allowances(client: TestClient, acct: Account, buyer_id: str) -> None:
    order = create_order(client, acct, buyer_id)
    r = client.post(f"/api/v1/orders/{order['id']}/invoice", headers=acct.headers)
    assert r.status_code == 201, r.text
    inv = r.json()["data"]
    assert inv["allowances_charges"] == []
    assert (inv["rounding_amount"], inv["allowance_total_amount"], inv["charge_total_amount"]) == ("0.00",) * 3
    assert inv["line_total_amount"] == inv["net_amount"] == "130.00"


def test_the_openapi_document_describes_the_fields(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    create = schemas["InvoiceCreate"]["properties"]
    assert "BG-20" in create["allowances_charges"]["description"]
    assert "BT-114" in create["rounding_amount"]["description"]
    allowance = schemas["AllowanceChargeIn"]["properties"]
    assert allowance["charge"]["type"] == "boolean"
    assert allowance["amount"]["type"] == "string"
    assert "UNCL 7161" in allowance["reason_code"]["description"]
    read = schemas["InvoiceRead"]["properties"]
    for field, term in (
        ("line_total_amount", "BT-106"),
        ("allowance_total_amount", "BT-107"),
        ("charge_total_amount", "BT-108"),
        ("net_amount", "BT-109"),
        ("amount_due", "BT-115"),
    ):
        assert term in read[field]["description"], field
