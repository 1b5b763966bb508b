"""POST /api/v1/einvoices/validate: authenticated, XML or multipart in, the report (or a 4xx) out."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from invoiceflow.main import create_app
from tests.conftest import make_settings
from tests.einvoicing.documents import (
    BROKEN,
    FIFTY_MB,
    HOSTILE,
    cii_invoice,
    ubl_invoice,
    without_buyer_party,
)
from tests.factories import Account, assert_error, create_api_key, register

URL = "/api/v1/einvoices/validate"


@pytest.fixture
def acct(einvoice_client: TestClient) -> Account:
    return register(einvoice_client)


def post_xml(client: TestClient, data: bytes, headers: dict[str, str], content_type: str = "application/xml") -> Any:
    return client.post(URL, content=data, headers={**headers, "Content-Type": content_type})


def report_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    return body["data"]  # type: ignore[no-any-return]


def test_unauthenticated_is_401(einvoice_client: TestClient, examples_dir: Path) -> None:
    r = post_xml(einvoice_client, ubl_invoice(examples_dir), {})
    assert_error(r, 401, "UNAUTHORIZED")
    r = post_xml(einvoice_client, ubl_invoice(examples_dir), {"Authorization": "Bearer not-a-token"})
    assert_error(r, 401, "INVALID_TOKEN")


@pytest.mark.parametrize("content_type", ["application/xml", "text/xml", "application/xml; charset=utf-8"])
def test_a_valid_invoice_as_the_raw_body(
    einvoice_client: TestClient, acct: Account, examples_dir: Path, content_type: str
) -> None:
    data = report_of(post_xml(einvoice_client, ubl_invoice(examples_dir), acct.headers, content_type))
    assert data["valid"] is True
    assert (data["document_type"], data["syntax"]) == ("Invoice", "ubl")
    assert data["findings"] == []
    assert [(layer["layer"], layer["status"]) for layer in data["layers"]] == [
        ("xsd", "passed"),
        ("en16931", "passed"),
        ("peppol", "passed"),
    ]


def test_a_valid_cii_invoice_as_a_multipart_upload(
    einvoice_client: TestClient, acct: Account, examples_dir: Path
) -> None:
    files = {"file": ("invoice.xml", cii_invoice(examples_dir), "application/xml")}
    data = report_of(einvoice_client.post(URL, files=files, headers=acct.headers))
    assert (data["valid"], data["document_type"], data["syntax"]) == (True, "CrossIndustryInvoice", "cii")
    assert {layer["layer"]: layer["status"] for layer in data["layers"]}["peppol"] == "skipped"


def test_an_api_key_works_too(einvoice_client: TestClient, acct: Account, examples_dir: Path) -> None:
    key = create_api_key(einvoice_client, acct)["key"]
    assert report_of(post_xml(einvoice_client, ubl_invoice(examples_dir), {"X-API-Key": key}))["valid"] is True


def test_an_invalid_invoice_is_200_with_its_findings(
    einvoice_client: TestClient, acct: Account, examples_dir: Path
) -> None:
    broken = BROKEN[0]  # BR-CO-15
    data = report_of(post_xml(einvoice_client, broken.build(examples_dir), acct.headers))
    assert data["valid"] is False
    [finding] = [f for f in data["findings"] if f["rule_id"] == "BR-CO-15"]
    assert finding["severity"] == "fatal"
    assert finding["layer"] == "en16931"
    assert finding["location"].startswith("/")
    assert "BT-112" in finding["message"]


def test_a_schema_invalid_invoice_is_200_and_says_the_schematron_did_not_run(
    einvoice_client: TestClient, acct: Account, examples_dir: Path
) -> None:
    data = report_of(post_xml(einvoice_client, without_buyer_party(examples_dir), acct.headers))
    assert data["valid"] is False
    assert [f["layer"] for f in data["findings"]] == ["xsd"]
    layers = {layer["layer"]: layer for layer in data["layers"]}
    assert layers["xsd"]["status"] == "failed"
    assert layers["en16931"]["status"] == "skipped"
    assert "schema" in layers["en16931"]["reason"]


@pytest.mark.parametrize(("name", "document", "status", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_a_4xx(
    einvoice_client: TestClient, acct: Account, name: str, document: bytes, status: int, code: str
) -> None:
    assert_error(post_xml(einvoice_client, document, acct.headers), status, code)


def test_hostile_input_in_a_multipart_upload_is_a_4xx(einvoice_client: TestClient, acct: Account) -> None:
    _, document, status, code = HOSTILE[0]  # XXE
    r = einvoice_client.post(URL, files={"file": ("x.xml", document, "text/xml")}, headers=acct.headers)
    assert_error(r, status, code)


def test_a_50_mb_body_is_413(einvoice_client: TestClient, acct: Account) -> None:
    # The request limit (5 MiB by default) refuses it before the body is read.
    assert_error(post_xml(einvoice_client, FIFTY_MB, acct.headers), 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded", "text/plain", None])
def test_other_media_types_are_415(
    einvoice_client: TestClient, acct: Account, examples_dir: Path, content_type: str | None
) -> None:
    headers = dict(acct.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    r = einvoice_client.post(URL, content=ubl_invoice(examples_dir), headers=headers)
    error = assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "multipart/form-data" in error["details"]["accepted"]


def test_xml_bodies_stay_415_on_json_routes(einvoice_client: TestClient, acct: Account, examples_dir: Path) -> None:
    """Only the routes that read XML accept it; the JSON routes keep refusing other media types."""
    r = post_xml(einvoice_client, ubl_invoice(examples_dir), acct.headers)
    assert r.status_code == 200
    r = einvoice_client.post(
        "/api/v1/clients", content=b"<client/>", headers={**acct.headers, "Content-Type": "application/xml"}
    )
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_multipart_without_the_file_field_is_422(
    einvoice_client: TestClient, acct: Account, examples_dir: Path
) -> None:
    r = einvoice_client.post(
        URL, files={"document": ("x.xml", ubl_invoice(examples_dir), "application/xml")}, headers=acct.headers
    )
    error = assert_error(r, 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["file"]
    r = einvoice_client.post(URL, data={"file": "<Invoice/>"}, files={"other": ("a", b"b")}, headers=acct.headers)
    assert_error(r, 422, "VALIDATION_ERROR")


def test_unconfigured_rules_are_503(
    einvoice_client: TestClient, acct: Account, database_url: str, data_dir: Path, tmp_path: Path, examples_dir: Path
) -> None:
    document = ubl_invoice(examples_dir)
    for rules_dir, mentions in ((None, "INVOICEFLOW_EINVOICE_RULES_DIR"), (tmp_path, str(tmp_path))):
        settings = make_settings(database_url, data_dir, einvoice_rules_dir=rules_dir)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            error = assert_error(post_xml(client, document, acct.headers), 503, "EINVOICE_RULES_MISSING")
        assert mentions in error["message"]


def test_the_route_is_documented(einvoice_client: TestClient) -> None:
    operation = einvoice_client.get("/openapi.json").json()["paths"][URL]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/xml", "text/xml", "multipart/form-data"}


def test_validation_never_takes_the_embedded_writer_lock(
    einvoice_client: TestClient, acct: Account, examples_dir: Path
) -> None:
    """Validating changes nothing, so it runs on a read session: on SQLite a long validation must not
    hold the one-writer lock. With the lock held elsewhere, the request still completes."""
    runtime = einvoice_client.app.state.runtime  # type: ignore[attr-defined]
    lock = runtime.db.write_lock
    if lock is None:
        pytest.skip("only SQLite has the process-wide writer lock")
    assert einvoice_client.portal is not None
    einvoice_client.portal.call(lock.acquire)
    try:
        outcome: list[Any] = []
        worker = threading.Thread(
            target=lambda: outcome.append(post_xml(einvoice_client, ubl_invoice(examples_dir), acct.headers))
        )
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "validation waited for the writer lock"
        assert outcome[0].status_code == 200
    finally:
        einvoice_client.portal.call(lock.release)
