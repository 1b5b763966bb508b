"""`GET /api/v1/invoices/export.xlsx`: the filtered invoice list as a workbook, read back with openpyxl.

Runs on SQLite and PostgreSQL. The export's numbers are compared with what the list API returns.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, insert

from invoiceflow.core.context import Actor
from invoiceflow.documents import service
from invoiceflow.documents.xlsx import LIST_COLUMNS
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.schemas import InvoiceFilters, InvoiceSelection
from tests.factories import Account, assert_error, create_client, create_invoice, register

EXPORT = "/api/v1/invoices/export.xlsx"
HEADINGS = [head for _, head, _, _ in LIST_COLUMNS]


def export_rows(client: TestClient, account: Account, **params: str) -> list[dict[str, Any]]:
    response = client.get(EXPORT, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == service.CONTENT_TYPES["xlsx"]
    assert response.headers["content-disposition"].startswith('attachment; filename="invoices-')
    book = load_workbook(BytesIO(response.content), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert list(rows[0]) == HEADINGS
    assert int(response.headers["x-total-count"]) == len(rows) - 1
    return [dict(zip(HEADINGS, row, strict=True)) for row in rows[1:]]


def listed(client: TestClient, account: Account, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": "200", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/invoices", params=query, headers=account.headers).json()["data"]
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def cents(value: float) -> str:
    """A numeric cell as the API's decimal string (cells hold doubles; two decimals are exact enough)."""
    return f"{Decimal(repr(value)):.2f}"


@pytest.fixture
def book(client: TestClient) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    """Two clients; Müller has a sent and a draft invoice, Dupont a sent and a paid one."""
    account = register(client)
    mueller = create_client(client, account)
    dupont = create_client(client, account, name="Dupont SARL", language="fr", vat_id="FR40303265045")
    invoices = {
        "m-sent": create_invoice(client, account, mueller["id"]),
        "m-draft": create_invoice(
            client,
            account,
            mueller["id"],
            items=[{"description": "Small job", "quantity": "1", "unit_price": "10.10", "vat_rate": "21"}],
        ),
        "d-sent": create_invoice(client, account, dupont["id"], currency="EUR"),
        "d-paid": create_invoice(
            client,
            account,
            dupont["id"],
            items=[{"description": "Audit", "quantity": "2.5", "unit_price": "333.33", "vat_rate": "20"}],
        ),
    }
    for name, statuses in {"m-sent": ["sent"], "d-sent": ["sent"], "d-paid": ["sent", "paid"]}.items():
        for status in statuses:
            r = client.patch(
                f"/api/v1/invoices/{invoices[name]['id']}/status", json={"status": status}, headers=account.headers
            )
            assert r.status_code == 200, r.text
    return account, {"mueller": mueller, "dupont": dupont}, invoices


# --------------------------------------------------------------------------------------------- the four cases


def test_export_needs_authentication(client: TestClient) -> None:
    assert_error(client.get(EXPORT), 401)


def test_export_holds_only_the_callers_invoices(client: TestClient, book: Any) -> None:
    stranger = register(client, org="Stranger Ltd")
    assert export_rows(client, stranger) == []
    # Another organisation's client id filters to nothing rather than leaking.
    _, clients, _ = book
    assert export_rows(client, stranger, client_id=clients["mueller"]["id"]) == []


@pytest.mark.parametrize(
    "params",
    [
        {"status": "archived"},
        {"client_id": "not-a-uuid"},
        {"issue_date_from": "yesterday"},
        {"min_amount": "1.5e400"},
        {"sort": "client"},
        {"limit": "10"},
        {"cursor": "abc"},
    ],
)
def test_invalid_filters_are_422(client: TestClient, book: Any, params: dict[str, str]) -> None:
    account, _, _ = book
    assert_error(client.get(EXPORT, params=params, headers=account.headers), 422, "VALIDATION_ERROR")


def test_export_filters_are_the_list_filters_without_paging() -> None:
    assert set(InvoiceSelection.model_fields) == set(InvoiceFilters.model_fields) - {"cursor", "limit"}
    for name, field in InvoiceSelection.model_fields.items():
        assert field.annotation == InvoiceFilters.model_fields[name].annotation, name
        assert field.default == InvoiceFilters.model_fields[name].default, name


# --------------------------------------------------------------------------------------------- happy paths


def test_export_equals_the_list_cell_by_cell(client: TestClient, book: Any) -> None:
    account, clients, _ = book
    names = {c["id"]: c["name"] for c in clients.values()}
    for params in ({}, {"status": "sent"}, {"client_id": clients["dupont"]["id"]}, {"sort": "total_amount"}):
        rows = export_rows(client, account, **params)
        api = listed(client, account, **params)
        assert [r["Number"] for r in rows] == [i["invoice_number"] for i in api], params
        for row, item in zip(rows, api, strict=True):
            assert row["Status"] == item["status"]
            assert row["Client"] == names[item["client_id"]]
            assert row["Issue date"].date().isoformat() == item["issue_date"]
            assert row["Due date"].date().isoformat() == item["due_date"]
            assert row["Currency"] == item["currency"]
            for heading, field in (
                ("Net", "net_amount"),
                ("VAT", "vat_amount"),
                ("Total", "total_amount"),
                ("Paid", "amount_paid"),
                ("Outstanding", "amount_due"),
            ):
                assert isinstance(row[heading], int | float), heading
                assert cents(row[heading]) == item[field], (heading, item["invoice_number"])


def test_status_and_client_filters_combine(client: TestClient, book: Any) -> None:
    account, clients, invoices = book
    rows = export_rows(client, account, status="sent", client_id=clients["dupont"]["id"])
    assert [r["Number"] for r in rows] == [invoices["d-sent"]["invoice_number"]]
    paid = export_rows(client, account, status="paid")
    assert [(r["Number"], r["Paid"], r["Outstanding"]) for r in paid] == [
        (invoices["d-paid"]["invoice_number"], float(invoices["d-paid"]["total_amount"]), 0)
    ]


def test_thousands_of_invoices_export_page_by_page(client: TestClient, db: Engine) -> None:
    account = register(client)
    customer = create_client(client, account)
    count = 5_123  # eleven pages of 500, the last one partial
    org, client_id = uuid.UUID(account.organization_id), uuid.UUID(customer["id"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for n in range(count):
        net = Decimal(n % 997) + Decimal("0.05")
        vat = (net * Decimal("0.21")).quantize(Decimal("0.01"))
        rows.append(
            {
                "id": uuid.uuid4(),
                "organization_id": org,
                "client_id": client_id,
                "invoice_number": f"BULK-{n:06d}",
                "status": "sent" if n % 3 else "draft",
                "issue_date": date(2026, 1, 1) + timedelta(days=n % 90),
                "due_date": date(2026, 4, 1),
                "currency": "EUR",
                "net_amount": net,
                "vat_amount": vat,
                "total_amount": net + vat,
                "amount_paid": Decimal(0),
                "created_at": start + timedelta(seconds=n),
                "updated_at": start + timedelta(seconds=n),
            }
        )
    with db.begin() as conn:
        conn.execute(insert(Invoice), rows)

    exported = export_rows(client, account)

    assert len(exported) == count
    # Newest first (the list's default sort), none lost or repeated across the page boundaries.
    assert [r["Number"] for r in exported] == [f"BULK-{n:06d}" for n in reversed(range(count))]
    assert sum(Decimal(cents(r["Total"])) for r in exported) == sum(r["total_amount"] for r in rows)
    drafts = export_rows(client, account, status="draft")
    assert len(drafts) == len([r for r in rows if r["status"] == "draft"])


def test_too_many_invoices_answer_422_and_leave_no_file(client: TestClient, book: Any, tmp_path: Path) -> None:
    account, _, _ = book
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    actor = Actor(organization_id=uuid.UUID(account.organization_id), user_id=None, api_key_id=None, role="admin")
    target = tmp_path / "list.xlsx"

    async def export(max_rows: int) -> int:
        async with runtime.db.read_sessions() as session:
            return await service.export_invoice_list(
                session, actor, InvoiceFilters(), target, max_rows=max_rows, page_size=2
            )

    with pytest.raises(service.ExportTooLarge) as caught:
        client.portal.call(export, 3)  # type: ignore[attr-defined]
    assert caught.value.status_code == 422
    assert not target.exists()
    assert client.portal.call(export, 4) == 4  # type: ignore[attr-defined]
    assert target.is_file()
