"""GET /api/v1/invoices: every filter, every sort, and cursor pagination across pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from invoiceflow.invoices.models import Invoice
from tests.factories import (
    Account,
    assert_error,
    create_client,
    create_invoice,
    error_fields,
    register,
    utc_today,
)

URL = "/api/v1/invoices"
OLD = utc_today().year - 2  # a past year, distinct from the current one


def line(price: str, rate: str = "21") -> list[dict[str, str]]:
    return [{"description": "Work", "quantity": "1", "unit_price": price, "vat_rate": rate}]


@dataclass
class Book:
    acct: Account
    globex: str
    initech: str
    inv: dict[str, dict[str, Any]]

    def ids(self, *names: str) -> list[str]:
        return [self.inv[n]["id"] for n in names]


def days(n: int) -> str:
    return (utc_today() + timedelta(days=n)).isoformat()


@pytest.fixture
def book(client: TestClient, db: Engine) -> Book:
    """Five invoices of one organisation (and one of another that must never show)."""
    acct = register(client)
    globex = create_client(client, acct, name="Globex Corporation")["id"]
    initech = create_client(client, acct, name="Initech")["id"]
    inv = {
        # draft, 121.00 EUR
        "i1": create_invoice(client, acct, globex, issue_date=f"{OLD}-01-10", due_date=days(10), items=line("100")),
        # sent, 242.00 EUR
        "i2": create_invoice(client, acct, initech, issue_date=f"{OLD}-02-10", due_date=days(20), items=line("200")),
        # overdue (set explicitly), 60.50 USD
        "i3": create_invoice(
            client, acct, globex, issue_date=f"{OLD}-03-10", due_date=days(30), currency="USD", items=line("50")
        ),
        # sent and past its due date (time passed), 1210.00 EUR
        "i4": create_invoice(client, acct, initech, issue_date=days(0), due_date=days(40), items=line("1000")),
        # cancelled, 550 JPY
        "i5": create_invoice(
            client, acct, globex, issue_date=f"{OLD}-01-20", due_date=days(5), currency="JPY", items=line("500", "10")
        ),
    }
    for name, path in {"i2": ["sent"], "i3": ["sent", "overdue"], "i4": ["sent"], "i5": ["cancelled"]}.items():
        for status in path:
            r = client.patch(f"{URL}/{inv[name]['id']}/status", json={"status": status}, headers=acct.headers)
            assert r.status_code == 200, r.text
    with db.begin() as conn:
        conn.execute(
            update(Invoice)
            .where(Invoice.id == uuid.UUID(inv["i4"]["id"]))
            .values(due_date=utc_today() - timedelta(days=1))
        )
    for name in inv:
        inv[name] = client.get(f"{URL}/{inv[name]['id']}", headers=acct.headers).json()["data"]
    other = register(client, org="Other")
    create_invoice(client, other, create_client(client, other, name="Globex Corporation")["id"])
    return Book(acct, globex, initech, inv)


def listed(client: TestClient, book: Book, **params: Any) -> list[str]:
    r = client.get(URL, params={"limit": 200, **params}, headers=book.acct.headers)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["data"]["items"]]


def walk(client: TestClient, book: Book, limit: int, **params: Any) -> tuple[list[str], list[int]]:
    ids: list[str] = []
    sizes: list[int] = []
    cursor = None
    for _ in range(50):
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        r = client.get(URL, params=query, headers=book.acct.headers)
        assert r.status_code == 200, r.text
        page = r.json()["data"]
        ids += [i["id"] for i in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, sizes
    raise AssertionError("pagination did not end")


def test_default_list_is_newest_first_with_summaries(client: TestClient, book: Book) -> None:
    r = client.get(URL, headers=book.acct.headers)
    assert r.status_code == 200, r.text
    page = r.json()["data"]
    assert [i["id"] for i in page["items"]] == book.ids("i5", "i4", "i3", "i2", "i1")
    assert page["next_cursor"] is None
    assert page["limit"] == 50
    summary = page["items"][0]
    full = book.inv["i5"]
    assert summary == {k: v for k, v in full.items() if k in summary}
    assert "items" not in summary
    assert summary["total_amount"] == "550"


FILTER_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"status": "draft"}, ["i1"]),
    ({"status": "sent"}, ["i4", "i2"]),
    ({"status": "overdue"}, ["i3"]),
    ({"status": "cancelled"}, ["i5"]),
    ({"status": "paid"}, []),
    ({"issue_date_from": f"{OLD}-02-01", "issue_date_to": f"{OLD}-03-31"}, ["i3", "i2"]),
    ({"issue_date_from": f"{OLD}-02-10"}, ["i4", "i3", "i2"]),
    ({"issue_date_to": f"{OLD}-01-20"}, ["i5", "i1"]),
    ({"due_date_from": days(15), "due_date_to": days(35)}, ["i3", "i2"]),
    ({"due_date_to": days(10)}, ["i5", "i4", "i1"]),
    ({"overdue": "true"}, ["i4", "i3"]),
    ({"overdue": "false"}, ["i5", "i2", "i1"]),
    ({"min_amount": "242.00"}, ["i5", "i4", "i2"]),
    ({"max_amount": "242"}, ["i3", "i2", "i1"]),
    ({"min_amount": "242", "max_amount": "242.00"}, ["i2"]),
    ({"min_amount": "60.50", "max_amount": "121"}, ["i3", "i1"]),
    ({"currency": "USD"}, ["i3"]),
    ({"currency": "eur"}, ["i4", "i2", "i1"]),
    ({"currency": "GBP"}, []),
    ({"q": "globex"}, ["i5", "i3", "i1"]),
    ({"q": "INITECH"}, ["i4", "i2"]),
    ({"q": f"INV-{OLD}"}, ["i5", "i3", "i2", "i1"]),
    ({"q": "nothing-matches"}, []),
    ({"status": "sent", "overdue": "true"}, ["i4"]),
    ({"q": "globex", "currency": "EUR"}, ["i1"]),
]


def test_filters(client: TestClient, book: Book) -> None:
    # One fixture build for all cases: each case names itself in the assertion message.
    for params, expected in FILTER_CASES:
        assert listed(client, book, **params) == book.ids(*expected), params


def test_filter_by_client_and_by_exact_number(client: TestClient, book: Book) -> None:
    assert listed(client, book, client_id=book.globex) == book.ids("i5", "i3", "i1")
    assert listed(client, book, client_id=book.initech, status="sent") == book.ids("i4", "i2")
    assert listed(client, book, client_id=str(uuid.uuid4())) == []
    number = book.inv["i2"]["invoice_number"]
    assert listed(client, book, q=number) == book.ids("i2")
    assert listed(client, book, q=number.lower()) == book.ids("i2")


SORT_CASES: list[tuple[str, list[str]]] = [
    ("-total_amount", ["i4", "i5", "i2", "i1", "i3"]),
    ("total_amount", ["i3", "i1", "i2", "i5", "i4"]),
    ("issue_date", ["i1", "i5", "i2", "i3", "i4"]),
    ("-issue_date", ["i4", "i3", "i2", "i5", "i1"]),
    ("due_date", ["i4", "i5", "i1", "i2", "i3"]),
    ("-due_date", ["i3", "i2", "i1", "i5", "i4"]),
    ("created_at", ["i1", "i2", "i3", "i4", "i5"]),
    ("-created_at", ["i5", "i4", "i3", "i2", "i1"]),
]


def test_sorts_paginate_across_pages(client: TestClient, book: Book) -> None:
    for sort, expected in SORT_CASES:
        for limit, sizes in ((2, [2, 2, 1]), (4, [4, 1]), (5, [5]), (200, [5])):
            ids, got_sizes = walk(client, book, limit, sort=sort)
            assert ids == book.ids(*expected), (sort, limit)
            assert got_sizes == sizes, (sort, limit)


def test_sort_by_invoice_number(client: TestClient, book: Book) -> None:
    by_number = sorted(book.inv, key=lambda n: book.inv[n]["invoice_number"])
    assert walk(client, book, 2, sort="invoice_number")[0] == book.ids(*by_number)
    assert walk(client, book, 3, sort="-invoice_number")[0] == book.ids(*reversed(by_number))


def test_filters_and_sort_together_across_pages(client: TestClient, book: Book) -> None:
    ids, sizes = walk(client, book, 1, sort="-total_amount", client_id=book.globex)
    assert ids == book.ids("i5", "i1", "i3")
    assert sizes == [1, 1, 1]


def test_equal_sort_values_still_page_without_duplicates_or_misses(client: TestClient, db: Engine) -> None:
    acct = register(client)
    buyer = create_client(client, acct)["id"]
    created = {create_invoice(client, acct, buyer, items=line("10"))["id"] for _ in range(7)}
    book = Book(acct, buyer, buyer, {})
    for sort in ("-total_amount", "total_amount", "issue_date", "-due_date"):
        ids, sizes = walk(client, book, 3, sort=sort)
        assert sizes == [3, 3, 1]
        assert len(ids) == 7
        assert set(ids) == created


INVALID_PARAMS: list[tuple[dict[str, Any], str]] = [
    ({"sort": "amount"}, "sort"),
    ({"sort": "-client_id"}, "sort"),
    ({"status": "archived"}, "status"),
    ({"client_id": "abc"}, "client_id"),
    ({"issue_date_from": "2025-13-01"}, "issue_date_from"),
    ({"due_date_to": "soon"}, "due_date_to"),
    ({"overdue": "maybe"}, "overdue"),
    ({"min_amount": "abc"}, "min_amount"),
    ({"max_amount": "-1"}, "max_amount"),
    ({"currency": "XYZ"}, "currency"),
    ({"limit": "0"}, "limit"),
    ({"limit": "201"}, "limit"),
    ({"cursor": "garbage!"}, "cursor"),
    ({"q": "x" * 201}, "q"),
    ({"page": "2"}, "page"),
]


def test_invalid_list_parameters_are_422(client: TestClient, book: Book) -> None:
    for params, field in INVALID_PARAMS:
        assert field in error_fields(client.get(URL, params=params, headers=book.acct.headers)), params


def test_a_cursor_from_another_sort_is_refused(client: TestClient, book: Book) -> None:
    page = client.get(URL, params={"limit": 2, "sort": "-total_amount"}, headers=book.acct.headers).json()["data"]
    r = client.get(
        URL, params={"limit": 2, "sort": "issue_date", "cursor": page["next_cursor"]}, headers=book.acct.headers
    )
    assert error_fields(r) == ["cursor"]


def test_list_requires_authentication(client: TestClient) -> None:
    assert_error(client.get(URL), 401, "UNAUTHORIZED")


def test_list_excludes_deleted_invoices(client: TestClient, book: Book) -> None:
    assert client.delete(f"{URL}/{book.inv['i1']['id']}", headers=book.acct.headers).status_code == 200
    assert listed(client, book) == book.ids("i5", "i4", "i3", "i2")
    assert listed(client, book, status="draft") == []


def test_date_filters_accept_the_same_day_at_both_ends(client: TestClient, book: Book) -> None:
    day = date.fromisoformat(book.inv["i2"]["issue_date"]).isoformat()
    assert listed(client, book, issue_date_from=day, issue_date_to=day) == book.ids("i2")
