"""The invoice workflow, run by DBOS in the API process: issuing an invoice leads to its stored PDF, one
email with the PDF attached, and its events; each step is visible through the API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import Engine, text

from tests.factories import assert_error, count_rows, create_client, create_invoice, event_rows, register
from tests.notifications.conftest import SmtpServer
from tests.workflows.conftest import wait_for


def _issue(client: TestClient, **client_overrides: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    account = register(client)
    buyer = create_client(client, account, **client_overrides)
    invoice = create_invoice(client, account, buyer["id"])
    sent = client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers)
    assert sent.status_code == 200, sent.text
    return account, buyer, sent.json()["data"]


def _workflow(client: TestClient, account: Any, invoice_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/invoices/{invoice_id}/workflow", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def _finished(client: TestClient, account: Any, invoice_id: str) -> dict[str, Any] | None:
    view = _workflow(client, account, invoice_id)
    return view if view["status"] in ("succeeded", "failed") else None


def test_issuing_an_invoice_runs_its_workflow_to_the_end(
    wf_client: TestClient, smtp_server: SmtpServer, db: Engine
) -> None:
    account, buyer, invoice = _issue(wf_client)
    view = wait_for(lambda: _finished(wf_client, account, invoice["id"]))

    assert view["status"] == "succeeded", view
    assert view["workflow_id"] == f"invoice-{invoice['id']}"
    assert [(s["name"], s["status"], s["attempts"]) for s in view["steps"]] == [
        ("documents", "succeeded", 1),
        ("email", "succeeded", 1),
        ("publish", "succeeded", 1),
    ]
    for step in view["steps"]:
        assert step["started_at"]
        assert step["completed_at"]
        assert step["duration_ms"] >= 0
        assert step["error"] is None
    # The same view under its own route.
    same = wf_client.get(f"/api/v1/workflows/{view['workflow_id']}", headers=account.headers)
    assert same.json()["data"]["steps"] == view["steps"]

    # One email, to the client, with the invoice's PDF attached (the stored one).
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0].message
    assert smtp_server.messages[0].rcpt_tos == [buyer["email"]]
    assert invoice["invoice_number"] in message["Subject"]
    pdfs = [part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    import io

    text_of_pdf = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdfs[0].get_content())).pages)
    assert invoice["invoice_number"] in text_of_pdf
    assert invoice["total_amount"].replace(".", ",") in text_of_pdf or invoice["total_amount"] in text_of_pdf

    with db.connect() as conn:
        documents = conn.execute(
            text("SELECT format, sha256 FROM documents WHERE invoice_id = :id"),
            {"id": invoice["id"].replace("-", "") if db.dialect.name == "sqlite" else invoice["id"]},
        ).all()
    assert [d.format for d in documents] == ["pdf"]
    assert count_rows(db, "notification_deliveries") == 1
    for event_type in ("InvoiceCreated", "PDFGenerated", "EmailSent", "InvoiceProcessed"):
        assert len(event_rows(db, type=event_type, resource_id=invoice["id"])) == 1, event_type


def test_a_client_with_an_electronic_address_also_gets_ubl_and_cii_stored(wf_client: TestClient, db: Engine) -> None:
    account, _buyer, invoice = _issue(wf_client, electronic_address="0208:0123456789", electronic_address_scheme="0208")
    view = wait_for(lambda: _finished(wf_client, account, invoice["id"]))
    assert view["status"] == "succeeded", view
    with db.connect() as conn:
        formats = conn.execute(text("SELECT format FROM documents")).scalars().all()
    assert sorted(formats) == ["cii", "pdf", "ubl"]


def test_a_draft_has_no_workflow_yet(wf_client: TestClient) -> None:
    account = register(wf_client)
    buyer = create_client(wf_client, account)
    invoice = create_invoice(wf_client, account, buyer["id"])
    view = _workflow(wf_client, account, invoice["id"])
    assert view == {"workflow_id": f"invoice-{invoice['id']}", "status": "not_started", "steps": []}


def test_another_organisation_cannot_see_the_workflow(wf_client: TestClient) -> None:
    account, _buyer, invoice = _issue(wf_client)
    other = register(wf_client, org="Other BV")
    assert_error(wf_client.get(f"/api/v1/invoices/{invoice['id']}/workflow", headers=other.headers), 404)
    assert_error(wf_client.get(f"/api/v1/workflows/invoice-{invoice['id']}", headers=other.headers), 404)
    assert_error(wf_client.get("/api/v1/workflows/nope", headers=account.headers), 404, "WORKFLOW_NOT_FOUND")
    assert_error(wf_client.get(f"/api/v1/workflows/invoice-{invoice['id']}"), 401)
