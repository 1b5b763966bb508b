"""Integration jobs as DBOS workflows: POST /invoices/process queues the job's workflow in its transaction;
the workflow runs it page by page to the end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from invoiceflow.workflows.router import ENGINE
from tests.factories import register
from tests.integrations.helpers import RULES_DIR, examples, expectations, outcomes
from tests.integrations.partners import DestinationServer, SourceServer
from tests.integrations.test_integrations_api import create, ok, wait_for


@pytest.fixture(scope="module")
def rules_app(wf_app: TestClient) -> Iterator[TestClient]:
    """The workflow app with the official rules and loopback partners allowed."""
    runtime: Any = wf_app.app.state.runtime  # type: ignore[attr-defined]
    before = runtime.settings
    runtime.settings = before.model_copy(
        update={"einvoice_rules_dir": RULES_DIR, "webhook_allow_private_networks": True}
    )
    deps = runtime.extras["workflow_runner"].deps
    deps.settings = runtime.settings
    try:
        yield wf_app
    finally:
        runtime.settings = before
        deps.settings = before


def test_a_manual_job_runs_as_a_workflow(rules_app: TestClient, wf_client: TestClient) -> None:
    documents = examples()[:12]
    expected = outcomes(expectations(documents))
    with SourceServer() as source, DestinationServer() as destination:
        source.add(*documents)
        account = register(wf_client)
        integration = create(wf_client, account, source.url, destination.url)
        started = ok(
            wf_client.post(
                "/api/v1/invoices/process",
                params={"integration_id": integration["id"]},
                json={"force_processing": False},
                headers=account.headers,
            ),
            202,
        )
        # The answer names the job's workflow at once.
        assert started["workflow_id"] == f"integration-job-{started['job_id']}"
        job = wait_for(wf_client, account, started["job_id"])
        assert job["status"] in ("completed", "completed_with_errors"), job
        sent = sum(1 for o in expected.values() if o == "sent")
        assert job["results"]["processed"] == sent
        assert destination.accepted_count == sent

        workflow = ok(wf_client.get(f"/api/v1/workflows/integration-job-{started['job_id']}", headers=account.headers))
        assert workflow["status"] == "succeeded"
        names = [s["name"] for s in workflow["steps"]]
        assert names == ["job_start", "job_page", "job_finish"]
        client = wf_client.app.state.runtime.extras[ENGINE].client  # type: ignore[attr-defined]
        pages = [r for r in client.list_workflow_steps(workflow["workflow_id"]) if r["function_name"] == "job_page"]
        assert len(pages) >= 1
