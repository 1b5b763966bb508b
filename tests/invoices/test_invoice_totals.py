"""Invoice totals to the cent (EN 16931 BR-CO rules, half-up rounding), currencies with 0 and 3
decimals, and gapless consecutive numbering."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    Account,
    count_rows,
    create_client,
    create_invoice,
    error_fields,
    invoice_payload,
    register,
    utc_today,
)


def line(qty: str, price: str, rate: str, category: str = "S", **extra: Any) -> dict[str, Any]:
    return {
        "description": f"{qty} x {price}",
        "quantity": qty,
        "unit_price": price,
        "vat_rate": rate,
        "vat_category": category,
        **extra,
    }


@pytest.fixture
def acct(client: TestClient) -> Account:
    return register(client)


@pytest.fixture
def buyer_id(client: TestClient, acct: Account) -> str:
    return str(create_client(client, acct)["id"])


def totals(inv: dict[str, Any]) -> tuple[str, str, str]:
    return inv["net_amount"], inv["vat_amount"], inv["total_amount"]


def breakdown(inv: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(g["vat_category"], g["vat_rate"], g["taxable_amount"], g["vat_amount"]) for g in inv["vat_breakdown"]]


# --- rounding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "lines", "expected", "groups"),
    [
        # 0.005 rounds half-up to 0.01 (half-even would give 0.00).
        ([line("1", "0.005", "21")], ["0.01"], ("0.01", "0.00", "0.01"), [("S", "21", "0.01", "0.00")]),
        # 3 x 33.335 = 100.005 -> 100.01; VAT 21.0021 -> 21.00.
        ([line("3", "33.335", "21")], ["100.01"], ("100.01", "21.00", "121.01"), [("S", "21", "100.01", "21.00")]),
        # VAT 0.105 -> 0.11 and 0.525 -> 0.53 (half-up, not banker's rounding).
        ([line("1", "0.50", "21")], ["0.50"], ("0.50", "0.11", "0.61"), [("S", "21", "0.50", "0.11")]),
        ([line("1", "2.50", "21")], ["2.50"], ("2.50", "0.53", "3.03"), [("S", "21", "2.50", "0.53")]),
        # BR-CO-17: VAT is computed once on the group's sum (3.15 x 10 % = 0.315 -> 0.32),
        # not per line (3 x 0.105 -> 3 x 0.11 = 0.33).
        ([line("1", "1.05", "10")] * 3, ["1.05"] * 3, ("3.15", "0.32", "3.47"), [("S", "10", "3.15", "0.32")]),
        # Fractional quantities and prices with 6 decimals.
        ([line("0.333333", "3", "21")], ["1.00"], ("1.00", "0.21", "1.21"), [("S", "21", "1.00", "0.21")]),
        ([line("2.5", "19.999999", "21")], ["50.00"], ("50.00", "10.50", "60.50"), [("S", "21", "50.00", "10.50")]),
        # Decimal VAT rate.
        ([line("1", "100", "5.5")], ["100.00"], ("100.00", "5.50", "105.50"), [("S", "5.5", "100.00", "5.50")]),
        # Large amounts keep every cent.
        (
            [line("1000000", "999999.99", "21")],
            ["999999990000.00"],
            ("999999990000.00", "209999997900.00", "1209999987900.00"),
            [("S", "21", "999999990000.00", "209999997900.00")],
        ),
    ],
)
def test_totals_round_half_up_to_the_cent(
    client: TestClient,
    acct: Account,
    buyer_id: str,
    items: list[dict[str, Any]],
    lines: list[str],
    expected: tuple[str, str, str],
    groups: list[tuple[str, str, str, str]],
) -> None:
    inv = create_invoice(client, acct, buyer_id, items=items)
    assert [i["line_total"] for i in inv["items"]] == lines
    assert totals(inv) == expected
    assert breakdown(inv) == groups
    assert inv["amount_paid"] == "0.00"
    assert inv["amount_due"] == expected[2]
    # The stored invoice reads back identically.
    assert client.get(f"/api/v1/invoices/{inv['id']}", headers=acct.headers).json()["data"] == inv


def test_mixed_vat_rates_and_categories_are_broken_down(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(
        client,
        acct,
        buyer_id,
        items=[
            line("3", "125.00", "21"),
            line("1", "45.50", "21"),
            line("2", "19.99", "6"),
            line("1", "100", "0", "Z"),
            line("1", "250", "0", "E", vat_exemption_reason="Training exempt under Art. 44"),
            line("1", "1000", "0", "AE", vat_exemption_reason="Reverse charge"),
        ],
    )
    assert [i["line_total"] for i in inv["items"]] == ["375.00", "45.50", "39.98", "100.00", "250.00", "1000.00"]
    assert [i["vat_category"] for i in inv["items"]] == ["S", "S", "S", "Z", "E", "AE"]
    assert inv["items"][4]["vat_exemption_reason"] == "Training exempt under Art. 44"
    # S 21 %: 420.50 -> 88.305 -> 88.31; S 6 %: 39.98 -> 2.3988 -> 2.40.
    assert breakdown(inv) == [
        ("AE", "0", "1000.00", "0.00"),
        ("E", "0", "250.00", "0.00"),
        ("S", "21", "420.50", "88.31"),
        ("S", "6", "39.98", "2.40"),
        ("Z", "0", "100.00", "0.00"),
    ]
    assert totals(inv) == ("1810.48", "90.71", "1901.19")


def test_same_rate_written_differently_is_one_vat_group(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=[line("1", "10", "21"), line("1", "10", "21.00")])
    assert breakdown(inv) == [("S", "21", "20.00", "4.20")]
    assert [i["vat_rate"] for i in inv["items"]] == ["21", "21"]


def test_yen_has_no_decimals(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, currency="JPY", items=[line("3", "333.5", "10"), line("1", "99", "8")])
    assert inv["currency"] == "JPY"
    # 3 x 333.5 = 1000.5 -> 1001; 10 % of 1001 = 100.1 -> 100; 8 % of 99 = 7.92 -> 8.
    assert [i["line_total"] for i in inv["items"]] == ["1001", "99"]
    assert [i["unit_price"] for i in inv["items"]] == ["333.5", "99"]
    assert breakdown(inv) == [("S", "10", "1001", "100"), ("S", "8", "99", "8")]
    assert totals(inv) == ("1100", "108", "1208")
    assert inv["amount_paid"] == "0"
    assert inv["amount_due"] == "1208"


def test_bahraini_dinar_has_three_decimals(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(
        client, acct, buyer_id, currency="BHD", items=[line("2", "1.2345", "10"), line("1", "0.0005", "10")]
    )
    # 2.469 and 0.0005 -> 0.001 (half-up); VAT 10 % of 2.470 = 0.247.
    assert [i["line_total"] for i in inv["items"]] == ["2.469", "0.001"]
    assert [i["unit_price"] for i in inv["items"]] == ["1.2345", "0.0005"]
    assert breakdown(inv) == [("S", "10", "2.470", "0.247")]
    assert totals(inv) == ("2.470", "0.247", "2.717")
    assert inv["amount_due"] == "2.717"


def test_unit_prices_show_at_least_the_currency_decimals(client: TestClient, acct: Account, buyer_id: str) -> None:
    inv = create_invoice(client, acct, buyer_id, items=[line("2", "49.9", "21"), line("1.500", "10", "21")])
    assert [(i["quantity"], i["unit_price"]) for i in inv["items"]] == [("2", "49.90"), ("1.5", "10.00")]


def test_currency_defaults_to_the_client_then_the_organisation(client: TestClient, acct: Account) -> None:
    chf = create_client(client, acct, currency="CHF")
    body = invoice_payload(chf["id"])
    del body["currency"]
    r = client.post("/api/v1/invoices", json=body, headers=acct.headers)
    assert r.json()["data"]["currency"] == "CHF"
    plain = create_client(client, acct, currency=None)
    body = invoice_payload(plain["id"])
    del body["currency"]
    r = client.post("/api/v1/invoices", json=body, headers=acct.headers)
    assert r.json()["data"]["currency"] == "EUR"


def test_dates_default_to_today_and_the_payment_terms(client: TestClient, acct: Account, buyer_id: str) -> None:
    body = invoice_payload(buyer_id)
    del body["issue_date"], body["due_date"]
    r = client.post("/api/v1/invoices", json=body, headers=acct.headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["issue_date"] == utc_today().isoformat()
    assert r.json()["data"]["due_date"] == (utc_today() + timedelta(days=30)).isoformat()


# --- numbering ------------------------------------------------------------------------------------


def test_numbers_are_consecutive_per_organisation(client: TestClient, acct: Account, buyer_id: str) -> None:
    year = utc_today().year
    numbers = [create_invoice(client, acct, buyer_id)["invoice_number"] for _ in range(3)]
    assert numbers == [f"INV-{year}-00001", f"INV-{year}-00002", f"INV-{year}-00003"]
    other = register(client, org="Other")
    assert create_invoice(client, other, create_client(client, other)["id"])["invoice_number"] == f"INV-{year}-00001"


def test_a_refused_invoice_does_not_use_up_a_number(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    year = utc_today().year
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{year}-00001"
    bad = invoice_payload(buyer_id, items=[line("1", "0", "21")])
    assert error_fields(client.post("/api/v1/invoices", json=bad, headers=acct.headers)) == ["items"]
    dup = create_invoice(client, acct, buyer_id, external_id="EXT-1")
    assert dup["invoice_number"] == f"INV-{year}-00002"
    r = client.post("/api/v1/invoices", json=invoice_payload(buyer_id, external_id="EXT-1"), headers=acct.headers)
    assert r.status_code == 409
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{year}-00003"
    assert count_rows(db, "invoices") == 3


def test_the_year_in_the_number_is_the_issue_year_with_its_own_counter(
    client: TestClient, acct: Account, buyer_id: str
) -> None:
    this_year = utc_today().year
    create_invoice(client, acct, buyer_id)
    back_dated = create_invoice(client, acct, buyer_id, issue_date=date(this_year - 1, 12, 31).isoformat())
    assert back_dated["invoice_number"] == f"INV-{this_year - 1}-00001"
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{this_year}-00002"


def test_custom_number_pattern(client: TestClient, acct: Account, buyer_id: str) -> None:
    r = client.patch("/api/v1/organization", json={"invoice_number_pattern": "F{YY}/{SEQ:04}"}, headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["invoice_number_pattern"] == "F{YY}/{SEQ:04}"
    yy = f"{utc_today().year % 100:02d}"
    assert [create_invoice(client, acct, buyer_id)["invoice_number"] for _ in range(2)] == [
        f"F{yy}/0001",
        f"F{yy}/0002",
    ]


def test_a_pattern_change_that_repeats_old_numbers_skips_them(client: TestClient, acct: Account, buyer_id: str) -> None:
    year = utc_today().year
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{year}-00001"
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{year}-00002"
    # The same numbers, spelled with a literal year: a new counter that starts at 1 again.
    r = client.patch(
        "/api/v1/organization", json={"invoice_number_pattern": f"INV-{year}-{{SEQ:05}}"}, headers=acct.headers
    )
    assert r.status_code == 200, r.text
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{year}-00003"
    assert create_invoice(client, acct, buyer_id)["invoice_number"] == f"INV-{year}-00004"


def test_concurrent_creates_get_distinct_consecutive_numbers(
    client: TestClient, db: Engine, acct: Account, buyer_id: str
) -> None:
    results: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        r = client.post("/api/v1/invoices", json=invoice_payload(buyer_id), headers=acct.headers)
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [201] * 8, [r.text for r in results if r.status_code != 201]
    year = utc_today().year
    assert sorted(r.json()["data"]["invoice_number"] for r in results) == [f"INV-{year}-{n:05d}" for n in range(1, 9)]
    assert count_rows(db, "invoices") == 8
