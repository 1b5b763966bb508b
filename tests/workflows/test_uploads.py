"""The seed upload flow: `POST /documents` answers 202 at once, the upload's workflow renders PDF and Excel in
the background and emails the uploader a link, `GET /documents/{id}` shows its progress and
`/documents/{id}/download` returns the files. Refused files leave nothing behind."""

from __future__ import annotations

import io
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import Engine

from tests.factories import assert_error, count_rows, create_api_key, create_client, event_rows, register
from tests.notifications.conftest import SmtpServer
from tests.workflows.conftest import wait_for

# 2 × 150.00 at 21 % and 1 × 49.50 at 6 %: net 349.50, VAT 63.00 + 2.97 = 65.97, total 415.47.
TOTAL = "415.47"


def seed(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "invoice_number": "SEED-2026-0042",
        "issue_date": "2026-11-02",
        "due_date": "2026-12-02",
        "currency": "EUR",
        "client": {
            "name": "Brouwerij De Kroon BV",
            "email": "ap@dekroon.example",
            "address": {"line1": "Markt 1", "postal_code": "9000", "city": "Gent", "country": "BE"},
            "vat_id": "BE0123456749",
        },
        "items": [
            {"description": "Consulting", "quantity": "2", "unit_price": "150.00", "vat_rate": "21"},
            {"description": "Handbook", "quantity": "1", "unit_price": "49.50", "vat_rate": "6"},
        ],
        "net_amount": "349.50",
        "vat_amount": "65.97",
        "total_amount": TOTAL,
    }
    body.update(overrides)
    return body


def post_file(
    client: TestClient,
    headers: dict[str, str],
    content: bytes,
    *,
    filename: str = "invoice_data.json",
    content_type: str = "application/json",
    field: str = "file",
) -> Any:
    return client.post("/api/v1/documents", files={field: (filename, content, content_type)}, headers=headers)


def upload(client: TestClient, headers: dict[str, str], body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = post_file(client, headers, orjson.dumps(body or seed()))
    assert r.status_code == 202, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def status_of(client: TestClient, headers: dict[str, str], upload_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/documents/{upload_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def finished(client: TestClient, headers: dict[str, str], upload_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view = status_of(client, headers, upload_id)
        settled = view["status"] in ("ready", "failed") and view["workflow"]["status"] in ("succeeded", "failed")
        return view if settled else None

    return wait_for(done)  # type: ignore[no-any-return]


def storage_root(client: TestClient) -> Path:
    return Path(client.app.state.runtime.extras["storage"].root)  # type: ignore[attr-defined]


def test_an_upload_is_rendered_in_the_background_and_the_uploader_gets_a_link(
    wf_client: TestClient, smtp_server: SmtpServer, db: Engine
) -> None:
    account = register(wf_client)
    accepted = upload(wf_client, account.headers)
    assert accepted["status"] == "queued"
    assert accepted["filename"] == "invoice_data.json"
    assert accepted["workflow_id"] == f"upload-{accepted['id']}"
    assert urlsplit(accepted["status_url"]).path == f"/api/v1/documents/{accepted['id']}"
    assert set(accepted) == {"id", "status", "filename", "created_at", "status_url", "workflow_id"}

    view = finished(wf_client, account.headers, accepted["id"])
    assert view["status"] == "ready", view
    assert view["error"] is None
    assert view["invoice_number"] == "SEED-2026-0042"
    assert view["completed_at"]
    assert [(s["name"], s["status"], s["attempts"]) for s in view["workflow"]["steps"]] == [
        ("parse", "succeeded", 1),
        ("render", "succeeded", 1),
        ("notify", "succeeded", 1),
        ("finish", "succeeded", 1),
    ]
    assert sorted(view["documents"]) == ["pdf", "xlsx"]

    # The PDF shows the number and the total; the workbook holds the same total.
    pdf_url = urlsplit(view["documents"]["pdf"]["download_url"])
    assert pdf_url.query == "format=pdf"
    pdf = wf_client.get(f"{pdf_url.path}?{pdf_url.query}", headers=account.headers)
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert 'filename="SEED-2026-0042.pdf"' in pdf.headers["content-disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "SEED-2026-0042" in text
    assert TOTAL in text
    xlsx = wf_client.get(f"/api/v1/documents/{accepted['id']}/download?format=xlsx", headers=account.headers)
    assert xlsx.status_code == 200, xlsx.text
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    assert sheet is not None
    numbers = {
        round(Decimal(str(value)), 2)
        for row in sheet.iter_rows(values_only=True)
        for value in row
        if isinstance(value, int | float)
    }
    assert Decimal(TOTAL) in numbers
    again = wf_client.get(
        f"/api/v1/documents/{accepted['id']}/download",
        headers={**account.headers, "If-None-Match": pdf.headers["etag"]},
    )
    assert again.status_code == 304

    # One email, to the uploader, whose link downloads the PDF without credentials.
    assert len(smtp_server.messages) == 1
    received = smtp_server.messages[0]
    assert received.rcpt_tos == [account.email]
    assert "SEED-2026-0042.pdf" in received.message["Subject"]
    body = received.message.get_body(preferencelist=("plain",))
    assert body is not None
    link = re.search(r"https?://\S+/api/v1/downloads/\S+", body.get_content())
    assert link is not None
    linked = wf_client.get(urlsplit(link.group(0)).path)
    assert linked.status_code == 200, linked.text
    assert linked.content == pdf.content

    # Rendered from the seed alone: no invoice or client was made; two documents of kind "upload".
    assert count_rows(db, "invoices") == 0
    assert count_rows(db, "clients") == 0
    assert count_rows(db, "documents") == 2
    assert len(event_rows(db, type="UploadProcessed", resource_id=accepted["id"])) == 1
    assert count_rows(db, "notification_deliveries") == 1


def test_an_uploader_without_an_email_is_not_notified(
    wf_client: TestClient, smtp_server: SmtpServer, db: Engine
) -> None:
    account = register(wf_client)
    key = create_api_key(wf_client, account)["key"]
    accepted = upload(wf_client, {"X-API-Key": key})
    view = finished(wf_client, {"X-API-Key": key}, accepted["id"])
    assert view["status"] == "ready", view
    assert [(s["name"], s["status"]) for s in view["workflow"]["steps"]] == [
        ("parse", "succeeded"),
        ("render", "succeeded"),
        ("notify", "skipped"),
        ("finish", "succeeded"),
    ]
    assert smtp_server.messages == []
    assert count_rows(db, "notification_deliveries") == 0


def _xxe() -> bytes:
    return b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Invoice>&xxe;</Invoice>'


REFUSED = {
    "bad JSON": (lambda c, h: post_file(c, h, b'{"invoice_number": '), 400, "MALFORMED_JSON"),
    "a JSON array": (lambda c, h: post_file(c, h, orjson.dumps([seed()])), 422, "VALIDATION_ERROR"),
    "XML under a .json name": (lambda c, h: post_file(c, h, _xxe()), 400, "MALFORMED_JSON"),
    "an empty file": (lambda c, h: post_file(c, h, b""), 400, "MALFORMED_JSON"),
    "a 6 MB body": (lambda c, h: post_file(c, h, b" " * (6 * 1024 * 1024)), 413, "PAYLOAD_TOO_LARGE"),
    "no file field": (lambda c, h: post_file(c, h, orjson.dumps(seed()), field="document"), 422, "VALIDATION_ERROR"),
    "a raw JSON body": (
        lambda c, h: c.post("/api/v1/documents", json=seed(), headers=h),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    "an XML part": (
        lambda c, h: post_file(c, h, _xxe(), filename="x.xml", content_type="application/xml"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    ),
    "no items": (lambda c, h: post_file(c, h, orjson.dumps(seed(items=[]))), 422, "VALIDATION_ERROR"),
    "no client": (lambda c, h: post_file(c, h, orjson.dumps(seed(client=None))), 422, "VALIDATION_ERROR"),
    "wrong totals": (lambda c, h: post_file(c, h, orjson.dumps(seed(total_amount="415.48"))), 422, "AMOUNTS_DISAGREE"),
}


def test_refused_files_answer_an_error_and_leave_nothing_behind(wf_client: TestClient, db: Engine) -> None:
    """Every refusal happens before anything is stored: no upload row, no idempotency record, no file."""
    account = register(wf_client)
    for case, (send, status, code) in REFUSED.items():
        response = send(wf_client, {**account.headers, "Idempotency-Key": f"key-{case}"})
        assert response.status_code == status, (case, response.text)
        assert_error(response, status, code)

    other = register(wf_client, org="Other BV")
    foreign = create_client(wf_client, other)
    body = seed(client=None, client_id=foreign["id"])
    error = assert_error(post_file(wf_client, account.headers, orjson.dumps(body)), 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["client_id"]

    assert count_rows(db, "uploads") == 0
    assert count_rows(db, "idempotency_keys") == 0
    assert not (storage_root(wf_client) / "orgs" / account.organization_id / "uploads").exists()


def test_uploads_are_private_to_their_organisation(wf_client: TestClient) -> None:
    owner = register(wf_client)
    other = register(wf_client, org="Other BV")
    accepted = upload(wf_client, owner.headers)
    for url in (
        f"/api/v1/documents/{accepted['id']}",
        f"/api/v1/documents/{accepted['id']}/download",
        f"/api/v1/documents/{accepted['id']}/download?format=xlsx",
    ):
        assert_error(wf_client.get(url, headers=other.headers), 404, "DOCUMENT_NOT_FOUND")
        assert_error(wf_client.get(url), 401)
    assert_error(wf_client.get(f"/api/v1/workflows/upload-{accepted['id']}", headers=other.headers), 404)
    listed = wf_client.get("/api/v1/documents", headers=other.headers)
    assert listed.json()["data"]["items"] == []
    assert_error(post_file(wf_client, {}, orjson.dumps(seed())), 401)
    assert_error(wf_client.get("/api/v1/documents"), 401)
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(wf_client.get(f"/api/v1/documents/{missing}", headers=owner.headers), 404, "DOCUMENT_NOT_FOUND")
    assert_error(wf_client.get("/api/v1/documents/not-a-uuid", headers=owner.headers), 422)
    finished(wf_client, owner.headers, accepted["id"])


def test_a_retried_post_returns_the_first_upload_and_lists_page(wf_client: TestClient, db: Engine) -> None:
    account = register(wf_client)
    headers = {**account.headers, "Idempotency-Key": "upload-1"}
    first = post_file(wf_client, headers, orjson.dumps(seed()))
    second = post_file(wf_client, headers, orjson.dumps(seed()))
    assert first.status_code == second.status_code == 202
    assert second.json()["data"] == first.json()["data"]
    assert second.headers["idempotent-replayed"] == "true"
    assert_error(post_file(wf_client, headers, orjson.dumps(seed(notes="other"))), 422, "IDEMPOTENCY_KEY_REUSED")
    assert count_rows(db, "uploads") == 1

    ids = [first.json()["data"]["id"], *(upload(wf_client, account.headers)["id"] for _ in range(2))]
    page = wf_client.get("/api/v1/documents?limit=2", headers=account.headers).json()["data"]
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    rest = wf_client.get(f"/api/v1/documents?limit=2&cursor={page['next_cursor']}", headers=account.headers)
    assert [item["id"] for item in rest.json()["data"]["items"]] == ids[:1]
    assert rest.json()["data"]["next_cursor"] is None
    for upload_id in ids:
        assert finished(wf_client, account.headers, upload_id)["status"] == "ready"
    ready = wf_client.get("/api/v1/documents?status=ready", headers=account.headers).json()["data"]["items"]
    assert len(ready) == 3


def test_a_render_that_fails_for_good_marks_the_upload_failed(
    wf_client: TestClient, smtp_server: SmtpServer, db: Engine
) -> None:
    """A buyer address far longer than a page: the PDF cannot be laid out, so the render is not retried."""
    account = register(wf_client)
    buyer = seed()["client"] | {"address": {"line1": "Markt " * 20000, "city": "Gent", "country": "BE"}}
    started = time.monotonic()
    accepted = upload(wf_client, account.headers, seed(client=buyer))
    assert time.monotonic() - started < 3.0  # answered before the render
    view = finished(wf_client, account.headers, accepted["id"])
    assert view["status"] == "failed", view
    assert view["error"]["step"] == "render"
    assert view["error"]["code"] == "DOCUMENT_TOO_LARGE_TO_RENDER"
    assert "too large to lay out" in view["error"]["message"]
    assert view["documents"] == {}
    steps = {s["name"]: s for s in view["workflow"]["steps"]}
    assert view["workflow"]["status"] == "failed"
    assert steps["parse"]["status"] == "succeeded"
    # A 4xx is the content's fault: one attempt, no backoff.
    assert (steps["render"]["status"], steps["render"]["attempts"]) == ("failed", 1)
    assert steps["notify"]["status"] == steps["finish"]["status"] == "pending"
    error = assert_error(
        wf_client.get(f"/api/v1/documents/{accepted['id']}/download", headers=account.headers),
        409,
        "DOCUMENT_NOT_READY",
    )
    assert error["details"]["status"] == "failed"
    assert smtp_server.messages == []
    assert event_rows(db, type="UploadProcessed") == []
