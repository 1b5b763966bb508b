"""kill -9 inside an integration job run as a DBOS workflow by a real `invoiceflow worker`, then start the worker
again: the job completes, every document gets its outcome, and the destination saw no invoice twice.

The job is started through the API (`POST /invoices/process`), whose app runs no workflows: it queues the
job's workflow for the worker. The kill is a fail point (core/failpoints.py) that sends SIGKILL to the worker
itself on the first page, with more pages to come:

* `integration.page`: the page was pushed and recorded (transaction B), DBOS has not recorded the `job_page`
  step. The restarted step must find the page recorded and push nothing of it again.
* `integration.push`: the destination accepted one invoice (others of the page may be in flight), its outcome
  is not recorded yet. The restarted step must push the page's `pushing` items again under the
  Idempotency-Key they were first pushed with, so the destination keeps the copy it has.

The survivor has the doomed worker's executor id, so DBOS recovers the pending workflow when it starts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from invoiceflow.main import create_app
from tests.auth.helpers import ok
from tests.conftest import _empty_tables
from tests.factories import register
from tests.integrations.helpers import RULES_DIR, examples, expectations, outcomes, settings_for
from tests.integrations.partners import DestinationServer, Document, Received, SourceServer, invoice_identity
from tests.integrations.test_integrations_api import PROCESS, create
from tests.workflows.workers import start_worker, stop_worker, wait_until_all, worker_env

PAGE_SIZE = 5
PAGES = 4


def documents() -> list[Document]:
    """Four pages of five official examples: three distinct valid invoices, one invalid one and one that
    repeats an invoice number of an earlier document of the job with other content ("changed") per page."""
    expected = outcomes(expectations(examples()))
    kinds = {kind: [doc for doc in examples() if expected[doc[0]] == kind] for kind in ("sent", "invalid", "changed")}
    chosen: list[Document] = []
    for page in range(PAGES):
        chosen += [*kinds["sent"][3 * page : 3 * page + 3], kinds["invalid"][page], kinds["changed"][page]]
    return chosen


@pytest.mark.slow
@pytest.mark.parametrize("point", ["integration.page", "integration.push"])
def test_kill_9_inside_an_integration_job_and_restart(
    point: str, database_url: str, sync_engine: Engine, tmp_path: Path
) -> None:
    _empty_tables(sync_engine)
    docs = documents()
    expected = outcomes(expectations(docs))  # worked out independently of the code under test
    identity: dict[str, tuple[str, str]] = {}  # source id -> (supplier, number) as the destination reads it
    for source_id, _fmt, body in docs:
        found = invoice_identity(body.encode())
        assert found is not None, source_id
        identity[source_id] = found
    # (A "changed" document shares its invoice with the one sent before it, so map the sent ones only.)
    body_of = {identity[source_id]: body.encode() for source_id, _fmt, body in docs if expected[source_id] == "sent"}
    to_send = set(body_of)
    first_page = {identity[source_id] for source_id, _fmt, _body in docs[:PAGE_SIZE]} & to_send
    assert (len(to_send), len(first_page)) == (3 * PAGES, 3)

    with (
        SourceServer(docs) as source,
        DestinationServer() as destination,
        # This app runs no workflows (run_workflows=False): the job's workflow is queued for the worker.
        TestClient(create_app(settings_for(database_url, tmp_path)), raise_server_exceptions=False) as api,
    ):
        account = register(api)
        integration = create(api, account, source.url, destination.url, page_size=PAGE_SIZE, schedule=None)
        started = ok(
            api.post(
                PROCESS,
                params={"integration_id": integration["id"]},
                json={"force_processing": False},
                headers=account.headers,
            ),
            202,
        )
        job_id = started["job_id"]
        workflow_id = f"integration-job-{job_id}"
        queued = ok(api.get(f"/api/v1/jobs/{job_id}", headers=account.headers))
        assert (queued["status"], queued["workflow_id"]) == ("queued", workflow_id)
        assert destination.received_count == 0  # queued, not run in the API process

        env = worker_env(
            database_url,
            tmp_path,
            "smtp://127.0.0.1:1",  # the job sends no email (it succeeds, notify_on_success is off)
            INVOICEFLOW_WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
            INVOICEFLOW_EINVOICE_RULES_DIR=str(RULES_DIR),
            INVOICEFLOW_INTEGRATION_VALIDATION_WORKERS="0",
        )
        executor = f"crash-{point}"
        log = tmp_path / "worker.log"
        doomed = start_worker(env, executor_id=executor, failpoints=point, log=log)
        assert doomed.wait(timeout=120) == -9, log.read_text()

        # Killed on the first page: what it had pushed reached the destination, the job is still running.
        killed_at = destination.received_count
        if point == "integration.page":
            assert killed_at == len(first_page), destination.received
        else:
            assert 1 <= killed_at <= len(first_page), destination.received
        assert ok(api.get(f"/api/v1/jobs/{job_id}", headers=account.headers))["status"] == "running"

        survivor = start_worker(env, executor_id=executor, log=log)
        try:
            wait_until_all(
                sync_engine, {workflow_id}, "SUCCESS", timeout=120, process=survivor, prefix="integration-job-"
            )
        finally:
            assert stop_worker(survivor) == 0, log.read_text()

        # The job completed with the outcome every document must have.
        job = ok(api.get(f"/api/v1/jobs/{job_id}", headers=account.headers))
        counts = Counter(expected.values())
        assert job["status"] == "completed_with_errors", job  # the invalid documents are per-invoice errors
        assert job["error"] is None
        assert job["results"] == {
            "total_invoices": len(docs),
            "processed": counts["sent"],
            "failed": 0,
            "duplicates": 0,
            "invalid": counts["invalid"],
            "changed": counts["changed"],
        }
        items = ok(api.get(f"/api/v1/jobs/{job_id}/items", params={"limit": 200}, headers=account.headers))["items"]
        assert {item["source_id"]: item["outcome"] for item in items} == expected

        # Nothing lost, nothing extra: the destination holds exactly the invoices to send, each with the
        # document's bytes, under the remote id the job recorded for it.
        assert set(destination.accepted) == to_send
        for invoice in to_send:
            assert destination.accepted[invoice].body == body_of[invoice]
        recorded = {identity[item["source_id"]]: item["remote_id"] for item in items if item["outcome"] == "sent"}
        assert recorded == {invoice: accepted.remote_id for invoice, accepted in destination.accepted.items()}

    # No invoice twice. Per invoice (supplier, number), every POST the destination received:
    requests: defaultdict[tuple[str, str], list[Received]] = defaultdict(list)
    for request in destination.received:
        if request.invoice is not None:  # a body cut off by the kill is no invoice, and nothing was accepted
            requests[request.invoice].append(request)
    assert set(requests) == to_send
    for invoice, received in requests.items():
        # - accepted (201) exactly once;
        assert [r.status for r in received].count(201) == 1, (invoice, received)
        # - always under one Idempotency-Key: a repeat under a fresh key would be a second invoice at a
        #   destination that deduplicates by key only (ours also matches supplier and number, so the key is
        #   what tells a safe repeat from a double send);
        assert len({r.key for r in received}) == 1, (invoice, received)
    repeated = {invoice: received for invoice, received in requests.items() if len(received) > 1}
    if point == "integration.page":
        # - the page was recorded before the kill: the restarted step replays it and pushes nothing again.
        assert repeated == {}
    else:
        # - pushed again only when the kill caught it between the destination's acceptance and our record
        #   (the first page, at least the invoice whose acceptance fired the fail point), and then the
        #   destination answered 409 with the copy it has, once.
        assert repeated, "the kill did not interrupt a push: the test exercised nothing"
        assert set(repeated) <= first_page
        for received in repeated.values():
            assert [r.status for r in received] == [201, 409], received
