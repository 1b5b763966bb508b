"""CRUD /api/v1/integrations, POST /api/v1/invoices/process, /api/v1/jobs and /metrics, through the real app.

Pattern per route: unauthenticated → 401, another organisation → 404, invalid → 422, then the happy path. Jobs
run in the app's process after the commit (no durable launcher configured), against the fake partners.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from invoiceflow.integrations.router import JOB_LAUNCHER
from invoiceflow.main import create_app
from tests.auth.helpers import create_api_key, err, ok
from tests.einvoicing.test_export_api import BUYER, ITEMS, SELLER
from tests.factories import Account, create_client, create_invoice, register
from tests.integrations.helpers import examples, expectations, outcomes, settings_for, valid_unique_examples
from tests.integrations.partners import (
    DEFAULT_DESTINATION_TOKEN,
    DEFAULT_SOURCE_TOKEN,
    DestinationServer,
    SourceServer,
)

BASE = "/api/v1/integrations"
PROCESS = "/api/v1/invoices/process"
SOURCE_SECRET = f"Bearer {DEFAULT_SOURCE_TOKEN}"
FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


@pytest.fixture(scope="session")
def _integrations_app(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(database_url, tmp_path_factory.mktemp("integrations"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as app_client:
        # This app runs no workflows: without a durable launcher, jobs run in its process after the commit
        # (the fallback). tests/workflows/test_integration_jobs.py runs them as DBOS workflows.
        app_client.app.state.runtime.extras.pop(JOB_LAUNCHER)  # type: ignore[attr-defined]
        yield app_client


@pytest.fixture
def api(_integrations_app: TestClient, client: TestClient) -> TestClient:
    """The app with e-invoice rules and loopback partners allowed, on the database `client` emptied."""
    _integrations_app.headers.clear()
    return _integrations_app


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


@pytest.fixture
def destination() -> Iterator[DestinationServer]:
    with DestinationServer() as server:
        yield server


def payload(source_url: str, dest_url: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Billing to books",
        "source": {"type": "http", "url": source_url, "headers": {"Authorization": SOURCE_SECRET}},
        "destination": {
            "type": "http",
            "url": dest_url,
            "bearer_token": DEFAULT_DESTINATION_TOKEN,
            "retry_base_delay_seconds": 0.01,
        },
        "schedule": "0 2 * * *",
        "timezone": "Europe/Brussels",
        "page_size": 25,
    }
    body.update(overrides)
    return body


def create(api: TestClient, account: Account, source_url: str, dest_url: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = ok(
        api.post(BASE, json=payload(source_url, dest_url, **overrides), headers=account.headers), 201
    )
    return data


def wait_for(api: TestClient, account: Account, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = ok(api.get(f"/api/v1/jobs/{job_id}", headers=account.headers))
        if job["status"] in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_integrations_crud_masks_every_secret(api: TestClient, db: Engine) -> None:
    owner, intruder = register(api), register(api, org="Intruder BV")
    created = create(api, owner, "http://127.0.0.1:9/src", "http://127.0.0.1:9/dst")
    assert created["source"]["headers"] == {"Authorization": "****" + SOURCE_SECRET[-4:]}
    assert created["destination"]["bearer_token"] == "****" + DEFAULT_DESTINATION_TOKEN[-4:]
    assert (created["schedule"], created["timezone"], created["enabled"], created["is_default"]) == (
        "0 2 * * *",
        "Europe/Brussels",
        True,
        False,
    )
    item = f"{BASE}/{created['id']}"

    # Read, list (keyset pages), and nobody else sees it.
    assert ok(api.get(item, headers=owner.headers)) == created
    second = create(api, owner, "http://127.0.0.1:9/a", "http://127.0.0.1:9/b", name="Second")
    page = ok(api.get(BASE, params={"limit": 1}, headers=owner.headers))
    assert [i["id"] for i in page["items"]] == [second["id"]]
    assert page["next_cursor"]
    rest = ok(api.get(BASE, params={"limit": 1, "cursor": page["next_cursor"]}, headers=owner.headers))
    assert [i["id"] for i in rest["items"]] == [created["id"]]
    assert ok(api.get(BASE, headers=intruder.headers))["items"] == []
    for method in ("GET", "PATCH", "DELETE"):
        err(api.request(method, item, json={"name": "x"}, headers=intruder.headers), 404, "INTEGRATION_NOT_FOUND")

    # A masked value sent back keeps the secret; a new one replaces it; the names are audited, never values.
    patched = ok(
        api.patch(
            item,
            json={
                "name": "Renamed",
                "source": {
                    **created["source"],
                    "headers": {**created["source"]["headers"], "X-Tenant": "acme-tenant-42-xyz"},
                },
            },
            headers=owner.headers,
        )
    )
    assert patched["name"] == "Renamed"
    assert patched["source"]["headers"] == {"Authorization": "****" + SOURCE_SECRET[-4:], "X-Tenant": "****-xyz"}
    with db.connect() as conn:
        stored = conn.execute(text("SELECT secrets, source FROM integrations")).all()
        audit = conn.execute(text("SELECT details FROM audit_logs WHERE action LIKE 'integration.%'")).all()
    assert all(SOURCE_SECRET not in str(row) and DEFAULT_DESTINATION_TOKEN not in str(row) for row in stored)
    assert all("acme-tenant-42-xyz" not in str(row) and DEFAULT_SOURCE_TOKEN not in str(row) for row in audit)

    err(
        api.post(
            BASE, json=payload("http://127.0.0.1:9/a", "http://127.0.0.1:9/b", name="Second"), headers=owner.headers
        ),
        409,
        "DUPLICATE_INTEGRATION_NAME",
    )
    deleted = ok(api.delete(item, headers=owner.headers))
    assert deleted["id"] == created["id"]
    err(api.get(item, headers=owner.headers), 404, "INTEGRATION_NOT_FOUND")


def test_the_stored_secret_is_what_reaches_the_partner(
    api: TestClient, source: SourceServer, destination: DestinationServer
) -> None:
    """Round trip of a masked header through PATCH: the partner still gets the real credential."""
    account = register(api)
    source.add(*valid_unique_examples(2))
    created = create(api, account, source.url, destination.url)
    ok(api.patch(f"{BASE}/{created['id']}", json={"source": created["source"]}, headers=account.headers))
    started = ok(api.post(PROCESS, json={}, headers=account.headers), 202)
    job = wait_for(api, account, started["job_id"])
    assert (job["status"], job["results"]["processed"]) == ("completed", 2), job


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"source": {"type": "ftp", "url": "ftp://x"}}, "source.type"),
        ({"source": {"type": "http"}}, "source.url"),
        ({"source": {"type": "http", "url": "http://127.0.0.1:9", "retries": 3}}, "source.retries"),
        ({"source": {"type": "http", "url": "http://127.0.0.1:9", "max_attempts": 0}}, "source.max_attempts"),
        ({"destination": {"type": "folder", "path": "/etc"}}, "destination.path"),
        ({"destination": {"type": "folder", "path": "../other-org"}}, "destination.path"),
        ({"destination": {"type": "folder", "path": "out", "bearer_token": "x"}}, "destination.bearer_token"),
        ({"destination": {"type": "http", "url": "file:///etc/passwd"}}, "destination.url"),
        ({"schedule": "every night"}, "schedule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"page_size": 0}, "page_size"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_invalid_integrations_are_refused_naming_the_field(api: TestClient, change: dict[str, Any], field: str) -> None:
    account = register(api)
    body = payload("http://127.0.0.1:9/a", "http://127.0.0.1:9/b") | change
    error = err(api.post(BASE, json=body, headers=account.headers), 422, "VALIDATION_ERROR")
    assert any(f["field"].startswith(field) for f in error["details"]["fields"]), error


def test_every_route_needs_authentication_and_writes_need_an_admin(api: TestClient) -> None:
    account = register(api)
    created = create(api, account, "http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
    for method, url in (
        ("POST", BASE),
        ("GET", BASE),
        ("GET", f"{BASE}/{created['id']}"),
        ("PATCH", f"{BASE}/{created['id']}"),
        ("DELETE", f"{BASE}/{created['id']}"),
        ("POST", PROCESS),
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000"),
        ("GET", "/api/v1/jobs/00000000-0000-0000-0000-000000000000/items"),
    ):
        err(api.request(method, url, json={}), 401, "UNAUTHORIZED")
    key = {"X-API-Key": create_api_key(api, account)["key"]}  # API keys act as members
    err(
        api.post(BASE, json=payload("http://127.0.0.1:9/c", "http://127.0.0.1:9/d"), headers=key), 403, "ADMIN_REQUIRED"
    )
    err(api.patch(f"{BASE}/{created['id']}", json={"name": "x"}, headers=key), 403, "ADMIN_REQUIRED")
    err(api.delete(f"{BASE}/{created['id']}", headers=key), 403, "ADMIN_REQUIRED")
    assert ok(api.get(f"{BASE}/{created['id']}", headers=key))["id"] == created["id"]


def test_process_runs_a_job_and_jobs_report_it(
    api: TestClient, source: SourceServer, destination: DestinationServer
) -> None:
    documents = examples()[:20]
    source.add(*documents)
    expected = outcomes(expectations(documents))
    account, intruder = register(api), register(api, org="Intruder BV")
    integration = create(api, account, source.url, destination.url)

    started = ok(
        api.post(
            PROCESS,
            params={"integration_id": integration["id"]},
            json={"force_processing": False},
            headers={**account.headers, "Idempotency-Key": "run-1"},
        ),
        202,
    )
    assert started["status"] == "queued"
    assert started["job_type"] == "manual"
    assert started["estimated_completion_at"] > started["created_at"]
    replay = api.post(
        PROCESS,
        params={"integration_id": integration["id"]},
        json={"force_processing": False},
        headers={**account.headers, "Idempotency-Key": "run-1"},
    )
    assert replay.status_code == 202
    assert replay.json()["data"]["job_id"] == started["job_id"]

    job = wait_for(api, account, started["job_id"])
    sent = sum(1 for o in expected.values() if o == "sent")
    invalid = {source_id for source_id, o in expected.items() if o == "invalid"}
    assert job["status"] == "completed_with_errors", job
    assert job["results"] == {
        "total_invoices": 20,
        "processed": sent,
        "failed": 0,
        "duplicates": 0,
        "invalid": len(invalid),
        "changed": sum(1 for o in expected.values() if o == "changed"),
    }
    assert job["duration_seconds"] is not None
    assert job["completed_at"] >= job["started_at"]
    assert {e["invoice_id"] for e in job["errors"] if e["outcome"] == "invalid"} == invalid
    assert all(e["rule_ids"] for e in job["errors"] if e["outcome"] == "invalid")
    assert destination.accepted_count == sent

    listed = ok(api.get("/api/v1/jobs", params={"status": "completed_with_errors"}, headers=account.headers))
    assert [j["job_id"] for j in listed["items"]] == [started["job_id"]]
    assert ok(api.get("/api/v1/jobs", params={"status": "failed"}, headers=account.headers))["items"] == []
    by_integration = ok(api.get("/api/v1/jobs", params={"integration_id": integration["id"]}, headers=account.headers))
    assert len(by_integration["items"]) == 1
    items = ok(
        api.get(f"/api/v1/jobs/{started['job_id']}/items", params={"outcome": "invalid"}, headers=account.headers)
    )
    assert {i["source_id"] for i in items["items"]} == invalid

    for url in (f"/api/v1/jobs/{started['job_id']}", f"/api/v1/jobs/{started['job_id']}/items"):
        err(api.get(url, headers=intruder.headers), 404, "JOB_NOT_FOUND")
    assert ok(api.get("/api/v1/jobs", headers=intruder.headers))["items"] == []
    err(
        api.post(PROCESS, params={"integration_id": integration["id"]}, json={}, headers=intruder.headers),
        404,
        "INTEGRATION_NOT_FOUND",
    )
    err(api.get("/api/v1/jobs", params={"status": "sleeping"}, headers=account.headers), 422, "VALIDATION_ERROR")


def test_process_without_a_usable_integration_says_why(api: TestClient) -> None:
    account = register(api)
    err(api.post(PROCESS, json={}, headers=account.headers), 404, "INTEGRATION_NOT_FOUND")
    first = create(api, account, "http://127.0.0.1:9/a", "http://127.0.0.1:9/b", enabled=False)
    err(api.post(PROCESS, json={}, headers=account.headers), 409, "INTEGRATION_DISABLED")
    create(api, account, "http://127.0.0.1:9/c", "http://127.0.0.1:9/d", name="Other")
    error = err(api.post(PROCESS, json={}, headers=account.headers), 422, "NO_DEFAULT_INTEGRATION")
    assert error["details"]["fields"][0]["field"] == "integration_id"
    ok(api.patch(f"{BASE}/{first['id']}", json={"enabled": True, "is_default": True}, headers=account.headers))
    err(api.post(PROCESS, json={"invoice_ids": "all"}, headers=account.headers), 422, "VALIDATION_ERROR")
    err(api.post(PROCESS, json={"force": True}, headers=account.headers), 422, "VALIDATION_ERROR")
    err(api.post(PROCESS, params={"integration_id": "nope"}, json={}, headers=account.headers), 422, "VALIDATION_ERROR")


def test_the_organisations_own_invoices_go_out_and_received_ones_come_in(
    api: TestClient, source: SourceServer, destination: DestinationServer
) -> None:
    account = register(api)
    ok(api.patch("/api/v1/organization", json=SELLER, headers=account.headers))
    buyer = create_client(api, account, **BUYER)
    invoice = create_invoice(api, account, buyer["id"], items=ITEMS, buyer_reference="PO-1")
    create_invoice(api, account, buyer["id"], items=ITEMS)  # a draft: not a legal document yet, not sent
    ok(api.patch(f"/api/v1/invoices/{invoice['id']}/status", json={"status": "sent"}, headers=account.headers))
    outgoing = create(
        api,
        account,
        "http://127.0.0.1:9/unused",
        destination.url,
        name="Out",
        source={"type": "invoiceflow"},
    )
    job = wait_for(
        api,
        account,
        ok(api.post(PROCESS, params={"integration_id": outgoing["id"]}, json={}, headers=account.headers), 202)[
            "job_id"
        ],
    )
    assert (job["status"], job["results"]["processed"]) == ("completed", 1), job
    (accepted,) = destination.accepted.values()
    assert b"<cbc:CustomizationID>" in accepted.body

    incoming = valid_unique_examples(3)
    source.add(*incoming)
    inbound = create(
        api, account, source.url, "http://127.0.0.1:9/unused", name="In", destination={"type": "invoiceflow"}
    )
    job = wait_for(
        api,
        account,
        ok(api.post(PROCESS, params={"integration_id": inbound["id"]}, json={}, headers=account.headers), 202)[
            "job_id"
        ],
    )
    assert (job["status"], job["results"]["processed"]) == ("completed", 3), job
    imported = ok(api.get("/api/v1/invoices", params={"limit": 50}, headers=account.headers))["items"]
    assert len(imported) == 5  # 2 of our own + 3 received
    # Forced again: the import refuses a supplier's number twice, which the job counts as a duplicate.
    again = wait_for(
        api,
        account,
        ok(
            api.post(
                PROCESS,
                params={"integration_id": inbound["id"]},
                json={"force_processing": True, "invoice_ids": [incoming[0][0]]},
                headers=account.headers,
            ),
            202,
        )["job_id"],
    )
    assert (again["results"]["total_invoices"], again["results"]["duplicates"]) == (1, 1), again


def test_secrets_appear_in_no_answer(api: TestClient, source: SourceServer, destination: DestinationServer) -> None:
    account = register(api)
    source.add(*valid_unique_examples(1))
    created = create(api, account, source.url, destination.url)
    started = ok(api.post(PROCESS, json={}, headers=account.headers), 202)
    wait_for(api, account, started["job_id"])
    answers = [
        api.get(BASE, headers=account.headers),
        api.get(f"{BASE}/{created['id']}", headers=account.headers),
        api.patch(f"{BASE}/{created['id']}", json={"description": "x"}, headers=account.headers),
        api.get("/api/v1/jobs", headers=account.headers),
        api.get(f"/api/v1/jobs/{started['job_id']}", headers=account.headers),
        api.get(f"/api/v1/jobs/{started['job_id']}/items", headers=account.headers),
        api.get("/api/v1/audit-logs", headers=account.headers),
        api.get("/api/v1/events", headers=account.headers),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert DEFAULT_SOURCE_TOKEN not in answer.text
        assert DEFAULT_DESTINATION_TOKEN not in answer.text


def test_metrics_are_exposed_for_prometheus(
    api: TestClient, source: SourceServer, destination: DestinationServer
) -> None:
    account = register(api)
    source.add(*valid_unique_examples(1))
    create(api, account, source.url, destination.url)
    job = wait_for(api, account, ok(api.post(PROCESS, json={}, headers=account.headers), 202)["job_id"])
    api.get(f"/api/v1/jobs/{job['job_id']}", headers=account.headers)

    r = api.get("/metrics")

    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert 'integration_jobs_total{status="completed",trigger="manual"}' in body
    assert 'invoice_processing_total{outcome="sent"}' in body
    assert "integration_job_duration_seconds_count" in body
    assert 'http_requests_total{method="GET",route="/api/v1/jobs/{job_id}",status="200"}' in body
    assert job["job_id"] not in body  # route templates, never ids
