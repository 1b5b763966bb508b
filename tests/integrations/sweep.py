"""An integration and a finished job of it, made through the API, for the route sweeps (tests/test_sweep.py)."""

from __future__ import annotations

import time
import uuid

from fastapi.testclient import TestClient

from tests.factories import Account

# Never contacted: `.example` names do not resolve (RFC 2606), and the sweep's app has no e-invoice rules,
# so its jobs end (failed) before fetching anything.
SOURCE_URL = "https://billing.example/api"
DESTINATION_URL = "https://books.example/api"
FINAL = {"completed", "completed_with_errors", "failed", "cancelled"}


def create_integration_job(client: TestClient, account: Account) -> tuple[str, str]:
    """(integration id, job id); the job has finished, so nothing changes under the sweep's snapshots."""
    r = client.post(
        "/api/v1/integrations",
        json={
            "name": f"Sweep {uuid.uuid4().hex[:8]}",
            "source": {"type": "http", "url": SOURCE_URL, "headers": {"Authorization": "Bearer sweep-source-secret"}},
            "destination": {"type": "http", "url": DESTINATION_URL, "api_key": "sweep-destination-secret"},
        },
        headers=account.headers,
    )
    assert r.status_code == 201, r.text
    integration_id: str = r.json()["data"]["id"]
    r = client.post(
        "/api/v1/invoices/process", params={"integration_id": integration_id}, json={}, headers=account.headers
    )
    assert r.status_code == 202, r.text
    job_id: str = r.json()["data"]["job_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=account.headers).json()["data"]
        if job["status"] in FINAL:
            break
        time.sleep(0.02)
    return integration_id, job_id
