"""Invoice documents through the API: stored PDFs and workbooks, their reuse, and expiring download links.

Runs on SQLite and PostgreSQL with the local storage folder, and once more against a real S3 server on
loopback (moto). The PDF is read back with pypdf, the workbook with openpyxl.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import Engine, select, update

from invoiceflow.core.context import Actor
from invoiceflow.core.signing import sign_download
from invoiceflow.documents import service
from invoiceflow.documents.models import Document
from invoiceflow.documents.pdf import TEMPLATE_VERSION as PDF_TEMPLATE
from invoiceflow.documents.xlsx import TEMPLATE_VERSION as XLSX_TEMPLATE
from tests.conftest import make_settings
from tests.factories import (
    Account,
    assert_error,
    create_client,
    create_invoice,
    event_rows,
    register,
)
from tests.s3server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, create_bucket

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ITEMS = [
    {
        "description": "Architecture workshop, two days",
        "quantity": "2",
        "unit_code": "DAY",
        "unit_price": "1250.00",
        "vat_rate": "21",
    },
    {"description": "Printed handbook", "quantity": "12", "unit_price": "18.75", "vat_rate": "6"},
    {"description": "Export freight", "quantity": "1", "unit_price": "240.00", "vat_category": "Z", "vat_rate": "0"},
]


def de_money(amount: str) -> str:
    """An API amount ("2965.00") as a German reader sees it on the PDF ("2.965,00 €")."""
    whole, cents = amount.split(".")
    return f"{int(whole):,}".replace(",", ".") + f",{cents} €"


def pdf_text(data: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)
    # Babel separates amount and sign with no-break spaces; a reader sees spaces.
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def document_rows(db: Engine, invoice_id: str) -> list[Any]:
    with db.connect() as conn:
        stmt = select(Document).where(Document.invoice_id == uuid.UUID(invoice_id)).order_by(Document.format)
        return list(conn.execute(stmt).all())


def local_root(client: TestClient) -> Path:
    root: Path = client.app.state.runtime.extras["storage"].root  # type: ignore[attr-defined]
    return root


def stored_files(client: TestClient, account: Account, invoice_id: str) -> list[Path]:
    folder = local_root(client) / "orgs" / account.organization_id / "invoices" / invoice_id
    return sorted(p for p in folder.glob("*") if not p.name.startswith(".")) if folder.exists() else []


def secret_key(client: TestClient) -> str:
    key: str = client.app.state.runtime.secret_key  # type: ignore[attr-defined]
    return key


def local_path(url: str) -> str:
    """A link's path and query: the test client talks to the app, not to public_base_url."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def setup(client: TestClient) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    """An organisation with a German client and a three-line draft invoice."""
    account = register(client)
    customer = create_client(client, account)
    invoice = create_invoice(client, account, customer["id"], items=ITEMS)
    return account, customer, invoice


ROUTES = ["pdf", "xlsx", "download-url"]


# --------------------------------------------------------------------------------------------- the four cases


@pytest.mark.parametrize("route", [*ROUTES, "export.xlsx"])
def test_every_route_needs_authentication(client: TestClient, setup: Any, route: str) -> None:
    _, _, invoice = setup
    path = "/api/v1/invoices/export.xlsx" if route == "export.xlsx" else f"/api/v1/invoices/{invoice['id']}/{route}"
    assert_error(client.get(path), 401)


@pytest.mark.parametrize("route", ROUTES)
def test_another_organisations_invoice_is_not_found(client: TestClient, setup: Any, db: Engine, route: str) -> None:
    _, _, invoice = setup
    stranger = register(client, org="Stranger Ltd")
    assert_error(client.get(f"/api/v1/invoices/{invoice['id']}/{route}", headers=stranger.headers), 404)
    assert document_rows(db, invoice["id"]) == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/invoices/not-a-uuid/pdf",
        "/api/v1/invoices/not-a-uuid/xlsx",
        "/api/v1/invoices/not-a-uuid/download-url",
        "/api/v1/invoices/{id}/download-url?format=docx",
        "/api/v1/invoices/{id}/download-url?format=PDF",
    ],
)
def test_invalid_input_is_422(client: TestClient, setup: Any, path: str) -> None:
    account, _, invoice = setup
    error = assert_error(client.get(path.format(id=invoice["id"]), headers=account.headers), 422, "VALIDATION_ERROR")
    assert error["details"]["fields"]


def test_a_missing_invoice_is_404(client: TestClient, setup: Any) -> None:
    account, _, _ = setup
    for route in ROUTES:
        assert_error(client.get(f"/api/v1/invoices/{uuid.uuid4()}/{route}", headers=account.headers), 404)


# --------------------------------------------------------------------------------------------- happy paths


def test_pdf_shows_exactly_what_the_api_shows(client: TestClient, setup: Any, db: Engine) -> None:
    account, customer, invoice = setup
    shown = client.get(f"/api/v1/invoices/{invoice['id']}", headers=account.headers).json()["data"]
    # 2 x 1250.00 @ 21 %, 12 x 18.75 @ 6 %, 240.00 zero-rated.
    assert (shown["net_amount"], shown["vat_amount"], shown["total_amount"]) == ("2965.00", "538.50", "3503.50")

    response = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    number = shown["invoice_number"]
    assert number
    assert response.headers["content-disposition"].startswith(f'attachment; filename="{number}.pdf"')
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.headers["etag"] == f'"{digest}"'
    text = pdf_text(response.content)
    wanted = [
        number,
        *(item["description"] for item in shown["items"]),
        customer["name"],
        "Hauptstraße 12",
        "80331 München",
        "Deutschland",
        *(f"{group['vat_rate']} %" for group in shown["vat_breakdown"]),
        *(de_money(group["vat_amount"]) for group in shown["vat_breakdown"]),
        *(de_money(item["line_total"]) for item in shown["items"]),
        de_money(shown["net_amount"]),
        de_money(shown["vat_amount"]),
        de_money(shown["total_amount"]),
        de_money(shown["amount_due"]),
    ]
    missing = [w for w in wanted if w not in text]
    assert not missing, missing
    assert {g["vat_rate"] for g in shown["vat_breakdown"]} == {"21", "6", "0"}

    [row] = document_rows(db, invoice["id"])
    assert (row.kind, row.format, row.content_type) == ("invoice", "pdf", "application/pdf")
    assert (row.sha256, row.size_bytes) == (digest, len(response.content))
    assert row.template_version == f"{PDF_TEMPLATE}-a4"
    assert row.storage_key.startswith(f"orgs/{account.organization_id}/invoices/{invoice['id']}/invoice-")
    assert (local_root(client) / row.storage_key).read_bytes() == response.content
    [event] = event_rows(db, type="PDFGenerated", resource_id=invoice["id"])
    assert event.payload["sha256"] == digest


def test_xlsx_holds_the_api_lines_and_totals_as_numbers(client: TestClient, setup: Any, db: Engine) -> None:
    account, _, invoice = setup
    shown = client.get(f"/api/v1/invoices/{invoice['id']}", headers=account.headers).json()["data"]

    response = client.get(f"/api/v1/invoices/{invoice['id']}/xlsx", headers=account.headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"].startswith(f'attachment; filename="{shown["invoice_number"]}.xlsx"')
    sheet = load_workbook(BytesIO(response.content)).active
    assert sheet is not None
    cells = list(sheet.iter_rows(values_only=True))
    head = next(i for i, row in enumerate(cells) if row[:2] == ("Pos", "Description"))
    lines = cells[head + 1 : head + 1 + len(shown["items"])]
    for line, item in zip(lines, shown["items"], strict=True):
        assert line[1] == item["description"]
        assert f"{line[7]:.2f}" == item["line_total"]
    labelled = {row[6]: row[7] for row in cells if len(row) > 7 and isinstance(row[6], str)}
    for label, field in (("Total excl. VAT", "net_amount"), ("VAT", "vat_amount"), ("Total incl. VAT", "total_amount")):
        assert f"{labelled[label]:.2f}" == shown[field], label
    [row] = document_rows(db, invoice["id"])
    assert (row.format, row.template_version, row.content_type) == ("xlsx", XLSX_TEMPLATE, XLSX)
    # No event for workbooks: PDFGenerated is about PDFs.
    assert event_rows(db, type="PDFGenerated", resource_id=invoice["id"]) == []


# --------------------------------------------------------------------------------------------- reuse and re-rendering


def test_the_second_download_reuses_the_stored_pdf(client: TestClient, setup: Any, db: Engine) -> None:
    account, _, invoice = setup
    first = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    [before] = document_rows(db, invoice["id"])

    second = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)

    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    [after] = document_rows(db, invoice["id"])
    assert after == before  # same id, key, sha256, created_at: nothing was rendered or written
    assert len(stored_files(client, account, invoice["id"])) == 1
    assert len(event_rows(db, type="PDFGenerated", resource_id=invoice["id"])) == 1


def test_if_none_match_answers_304_without_a_body(client: TestClient, setup: Any) -> None:
    account, _, invoice = setup
    first = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    again = client.get(
        f"/api/v1/invoices/{invoice['id']}/pdf", headers={**account.headers, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


def test_editing_a_draft_renders_it_again(client: TestClient, setup: Any, db: Engine) -> None:
    account, _, invoice = setup
    client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    [before] = document_rows(db, invoice["id"])

    changed = [
        *ITEMS,
        {"description": "Late-added travel costs", "quantity": "1", "unit_price": "80", "vat_rate": "21"},
    ]
    patched = client.patch(f"/api/v1/invoices/{invoice['id']}", json={"items": changed}, headers=account.headers)
    assert patched.status_code == 200, patched.text
    response = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)

    [after] = document_rows(db, invoice["id"])
    assert after.id == before.id  # the row is updated in place
    assert after.source_checksum != before.source_checksum
    assert after.sha256 != before.sha256
    assert after.storage_key != before.storage_key
    assert after.sha256 == hashlib.sha256(response.content).hexdigest()
    text = pdf_text(response.content)
    assert "Late-added travel costs" in text
    assert de_money(patched.json()["data"]["total_amount"]) in text
    assert len(event_rows(db, type="PDFGenerated", resource_id=invoice["id"])) == 2


def test_a_new_template_version_renders_it_again(client: TestClient, setup: Any, db: Engine) -> None:
    account, _, invoice = setup
    client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    [before] = document_rows(db, invoice["id"])
    with db.begin() as conn:
        conn.execute(update(Document).where(Document.id == before.id).values(template_version="pdf-0-a4"))

    response = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)

    assert response.status_code == 200
    [after] = document_rows(db, invoice["id"])
    assert after.template_version == f"{PDF_TEMPLATE}-a4"
    assert after.created_at > before.created_at
    assert after.source_checksum == before.source_checksum
    assert len(event_rows(db, type="PDFGenerated", resource_id=invoice["id"])) == 2


def test_an_issued_invoice_keeps_the_document_it_was_issued_with(client: TestClient, setup: Any, db: Engine) -> None:
    """After sending, a change to the client or to the template must not rewrite the client's invoice."""
    account, customer, invoice = setup
    sent = client.patch(f"/api/v1/invoices/{invoice['id']}/status", json={"status": "sent"}, headers=account.headers)
    assert sent.status_code == 200, sent.text
    first = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    [before] = document_rows(db, invoice["id"])
    moved = client.patch(
        f"/api/v1/clients/{customer['id']}", json={"name": "Renamed Buyer GmbH"}, headers=account.headers
    )
    assert moved.status_code == 200, moved.text
    with db.begin() as conn:
        conn.execute(update(Document).where(Document.id == before.id).values(template_version="pdf-0-a4"))

    again = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)

    assert again.content == first.content
    assert "Renamed Buyer GmbH" not in pdf_text(again.content)
    assert customer["name"] in pdf_text(again.content)
    [after] = document_rows(db, invoice["id"])
    assert after.sha256 == before.sha256
    assert len(event_rows(db, type="PDFGenerated", resource_id=invoice["id"])) == 1


def test_a_lost_file_is_rendered_again(client: TestClient, setup: Any, db: Engine) -> None:
    account, _, invoice = setup
    first = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    [row] = document_rows(db, invoice["id"])
    (local_root(client) / row.storage_key).unlink()

    again = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)

    assert again.status_code == 200
    assert again.content == first.content  # deterministic rendering: the same bytes again
    assert (local_root(client) / row.storage_key).is_file()


def test_concurrent_first_downloads_store_one_document(client: TestClient, setup: Any, db: Engine) -> None:
    account, _, invoice = setup
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    actor = Actor(
        organization_id=uuid.UUID(account.organization_id),
        user_id=uuid.UUID(account.user_id),
        api_key_id=None,
        role="admin",
    )
    store = service.store_for(runtime)

    async def download() -> service.StoredDocument:
        async with runtime.db.read_sessions() as session:
            return await service.ensure_document(session, actor, uuid.UUID(invoice["id"]), "pdf", store)

    async def at_once() -> list[service.StoredDocument]:
        return list(await asyncio.gather(*(download() for _ in range(6))))

    results = client.portal.call(at_once)  # type: ignore[attr-defined]

    assert len({r.sha256 for r in results}) == 1
    assert len({r.storage_key for r in results}) == 1
    [row] = document_rows(db, invoice["id"])
    assert row.sha256 == results[0].sha256
    assert len(stored_files(client, account, invoice["id"])) == 1
    # And the route serves what was stored.
    response = client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    assert hashlib.sha256(response.content).hexdigest() == row.sha256


# --------------------------------------------------------------------------------------------- signed local links


def download_url(client: TestClient, account: Account, invoice_id: str, fmt: str = "pdf") -> dict[str, Any]:
    response = client.get(f"/api/v1/invoices/{invoice_id}/download-url?format={fmt}", headers=account.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    data: dict[str, Any] = body["data"]
    return data


@pytest.mark.parametrize("fmt", ["pdf", "xlsx"])
def test_a_signed_link_downloads_without_credentials(client: TestClient, setup: Any, fmt: str) -> None:
    account, _, invoice = setup
    before = datetime.now(UTC)
    link = download_url(client, account, invoice["id"], fmt)

    assert link["url"].startswith("http://localhost:8000/api/v1/downloads/")
    expires = datetime.fromisoformat(link["expires_at"])
    assert before + timedelta(seconds=898) <= expires <= datetime.now(UTC) + timedelta(seconds=900)
    client.headers.clear()
    response = client.get(local_path(link["url"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == service.CONTENT_TYPES[fmt]
    assert response.headers["content-disposition"].startswith(f'attachment; filename="{invoice["invoice_number"]}.')
    direct = client.get(f"/api/v1/invoices/{invoice['id']}/{fmt}", headers=account.headers)
    assert response.content == direct.content


def test_a_tampered_link_is_refused(client: TestClient, setup: Any) -> None:
    account, _, invoice = setup
    path = local_path(download_url(client, account, invoice["id"])["url"])
    flipped = path[:-1] + ("A" if path[-1] != "A" else "B")
    assert_error(client.get(flipped), 403, "DOWNLOAD_LINK_INVALID")
    assert_error(client.get(path.replace(".", "x", 1)), 403, "DOWNLOAD_LINK_INVALID")
    assert_error(client.get("/api/v1/downloads/garbage"), 403, "DOWNLOAD_LINK_INVALID")


def test_an_expired_link_is_refused(client: TestClient, setup: Any, db: Engine) -> None:
    account, _, invoice = setup
    client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    [row] = document_rows(db, invoice["id"])
    token = sign_download(
        secret_key(client),
        organization_id=uuid.UUID(account.organization_id),
        key=row.storage_key,
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
        filename="x.pdf",
    )
    assert_error(client.get(f"/api/v1/downloads/{token}"), 403, "DOWNLOAD_LINK_EXPIRED")


def test_a_link_never_opens_another_organisations_file(client: TestClient, setup: Any, db: Engine) -> None:
    account, _, invoice = setup
    client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    [row] = document_rows(db, invoice["id"])
    other = register(client, org="Other Org")
    expires = datetime.now(UTC) + timedelta(minutes=5)
    # Organisation B's id with organisation A's key: correctly signed, still refused.
    token = sign_download(
        secret_key(client),
        organization_id=uuid.UUID(other.organization_id),
        key=row.storage_key,
        expires_at=expires,
        filename="x.pdf",
    )
    assert_error(client.get(f"/api/v1/downloads/{token}"), 403, "DOWNLOAD_LINK_INVALID")
    # B's id and a key moved into B's namespace: there is no such document.
    moved = row.storage_key.replace(account.organization_id, other.organization_id)
    token = sign_download(
        secret_key(client),
        organization_id=uuid.UUID(other.organization_id),
        key=moved,
        expires_at=expires,
        filename="x.pdf",
    )
    assert_error(client.get(f"/api/v1/downloads/{token}"), 404, "DOCUMENT_NOT_FOUND")


def test_a_link_to_a_key_without_a_documents_row_is_refused(client: TestClient, setup: Any) -> None:
    account, _, invoice = setup
    key = f"orgs/{account.organization_id}/invoices/{invoice['id']}/invoice-{'0' * 16}.pdf"
    (local_root(client) / key).parent.mkdir(parents=True, exist_ok=True)
    (local_root(client) / key).write_bytes(b"%PDF-1.4 planted")
    token = sign_download(
        secret_key(client),
        organization_id=uuid.UUID(account.organization_id),
        key=key,
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        filename="x.pdf",
    )
    assert_error(client.get(f"/api/v1/downloads/{token}"), 404, "DOCUMENT_NOT_FOUND")


def test_a_link_stops_working_once_the_invoice_changed_or_was_deleted(client: TestClient, setup: Any) -> None:
    account, _, invoice = setup
    old = local_path(download_url(client, account, invoice["id"])["url"])
    patched = client.patch(f"/api/v1/invoices/{invoice['id']}", json={"notes": "Revised"}, headers=account.headers)
    assert patched.status_code == 200
    new = local_path(download_url(client, account, invoice["id"])["url"])

    assert_error(client.get(old), 404, "DOCUMENT_NOT_FOUND")
    assert client.get(new).status_code == 200
    assert client.delete(f"/api/v1/invoices/{invoice['id']}", headers=account.headers).status_code == 200
    assert_error(client.get(new), 404, "DOCUMENT_NOT_FOUND")


# --------------------------------------------------------------------------------------------- S3


@pytest.fixture
def s3_app(
    client: TestClient, database_url: str, tmp_path: Path, s3_endpoint: str, s3: Any
) -> Iterator[tuple[TestClient, str]]:
    """An app storing documents in a fresh bucket of the local S3 server, under the prefix `tenant-docs`."""
    bucket = create_bucket(s3)
    settings = make_settings(
        database_url,
        tmp_path,
        storage_url=f"s3://{bucket}/tenant-docs",
        s3_endpoint_url=s3_endpoint,
        s3_region=REGION,
        s3_access_key_id=ACCESS_KEY_ID,
        s3_secret_access_key=SECRET_ACCESS_KEY,
    )
    from invoiceflow.main import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as app_client:
        yield app_client, bucket


def test_s3_storage_serves_the_pdf_and_presigned_links(s3_app: tuple[TestClient, str], s3: Any, db: Engine) -> None:
    app_client, bucket = s3_app
    account = register(app_client)
    customer = create_client(app_client, account)
    invoice = create_invoice(app_client, account, customer["id"], items=ITEMS)

    response = app_client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)

    assert response.status_code == 200, response.text
    assert invoice["invoice_number"] in pdf_text(response.content)
    [row] = document_rows(db, invoice["id"])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"tenant-docs/orgs/{account.organization_id}/")
    assert [obj["Key"] for obj in listed["Contents"]] == [f"tenant-docs/{row.storage_key}"]
    assert s3.get_object(Bucket=bucket, Key=f"tenant-docs/{row.storage_key}")["Body"].read() == response.content

    again = app_client.get(f"/api/v1/invoices/{invoice['id']}/pdf", headers=account.headers)
    assert again.content == response.content
    assert document_rows(db, invoice["id"]) == [row]

    link = download_url(app_client, account, invoice["id"])
    assert "X-Amz-Signature=" in link["url"]
    fetched = httpx.get(link["url"], timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == response.content
    assert fetched.headers["content-type"] == "application/pdf"
    assert f'filename="{invoice["invoice_number"]}.pdf"' in fetched.headers["content-disposition"]


def test_the_invoice_links_to_its_pdf(client: TestClient, setup: Any) -> None:
    account, _, invoice = setup
    response = client.get(invoice["pdf_url"], headers=account.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert invoice["invoice_number"] in pdf_text(response.content)
