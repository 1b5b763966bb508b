"""POST /api/v1/jobs/{job_id}/cancel: a queued job is cancelled at once and never runs; a running one stops at
its next page boundary, keeping every push the destination accepted in its items and the dedupe ledger.

Jobs run in the app's process after the commit (the in-process runner), against the fake partners; the last
test runs one as a DBOS workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from invoiceflow.core.context import system_actor
from invoiceflow.core.db import Database
from invoiceflow.core.models import AuditLog, DomainEvent
from invoiceflow.integrations import jobs
from invoiceflow.integrations.jobs.core import cancel_job
from invoiceflow.integrations.models import Integration, IntegrationJob, SentRecord
from tests.auth.helpers import create_api_key, err, ok
from tests.factories import Account, register
from tests.integrations.helpers import (
    http_integration,
    item_outcomes,
    load_job,
    make_integration,
    make_job,
    make_org,
    settings_for,
    valid_unique_examples,
)
from tests.integrations.partners import DestinationServer, Document, Fault, SourceServer
from tests.integrations.test_integrations_api import (
    PROCESS,
    _integrations_app,  # noqa: F401 - a fixture
    create,
    wait_for,
)
from tests.test_cli import run_cli
from tests.workflows.conftest import smtp_server, wf_app, wf_client  # noqa: F401 - fixtures
from tests.workflows.test_integration_jobs import rules_app  # noqa: F401 - fixture

JOBS = "/api/v1/jobs"


@pytest.fixture
def api(_integrations_app: TestClient, client: TestClient) -> TestClient:  # noqa: F811
    """The integrations tests' app (rules, loopback partners, in-process runner) on an emptied database."""
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


def cancel_url(job_id: str) -> str:
    return f"{JOBS}/{job_id}/cancel"


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
    return value


def set_lock(db: Engine, integration_id: str, holder: uuid.UUID | None) -> None:
    """Another run holds the integration's run lock (or nobody does), as `jobs.hold_lock` would set it."""
    from invoiceflow.core.db import utcnow
    from invoiceflow.integrations.jobs import LEASE

    with db.begin() as conn:
        conn.execute(
            update(Integration)
            .where(Integration.id == uuid.UUID(integration_id))
            .values(active_job_id=holder, active_until=utcnow() + LEASE if holder else None)
        )


def active_job(db: Engine, integration_id: str) -> uuid.UUID | None:
    with db.connect() as conn:
        return conn.execute(
            select(Integration.active_job_id).where(Integration.id == uuid.UUID(integration_id))
        ).scalar_one()


def events_of(db: Engine, job_id: str) -> list[str]:
    with db.connect() as conn:
        return list(
            conn.execute(
                select(DomainEvent.type).where(DomainEvent.resource_id == job_id).order_by(DomainEvent.seq)
            ).scalars()
        )


def ledger_of(db: Engine, job_id: str) -> set[tuple[str, str]]:
    with db.connect() as conn:
        rows = conn.execute(
            select(SentRecord.supplier_key, SentRecord.invoice_number).where(SentRecord.job_id == uuid.UUID(job_id))
        ).all()
    return {(row[0], row[1]) for row in rows}


def all_items(api: TestClient, account: Account, job_id: str) -> list[dict[str, Any]]:
    page = ok(api.get(f"{JOBS}/{job_id}/items", params={"limit": 500}, headers=account.headers))
    assert page["next_cursor"] is None
    items: list[dict[str, Any]] = page["items"]
    return items


def accepted_source_ids(destination: DestinationServer, documents: list[Document]) -> set[str]:
    """The source documents the destination accepted (it received each document's bytes as they are)."""
    by_body = {body.encode(): source_id for source_id, _fmt, body in documents}
    return {by_body[accepted.body] for accepted in list(destination.accepted.values())}


# --- a queued job -------------------------------------------------------------------------------------------


def test_a_queued_job_is_cancelled_at_once_and_never_runs(
    api: TestClient, db: Engine, source: SourceServer, destination: DestinationServer
) -> None:
    account = register(api)
    documents = valid_unique_examples(4)
    source.add(*documents)
    integration = create(api, account, source.url, destination.url)
    retry_safe = {**account.headers, "Idempotency-Key": "cancel-1"}
    # Another run holds the run lock: the new job waits in `queued` (its runner polls the lock every second).
    set_lock(db, integration["id"], uuid.uuid4())
    queued = ok(api.post(PROCESS, json={}, headers=account.headers), 202)
    assert queued["status"] == "queued"
    assert queued["cancel_requested_at"] is None
    time.sleep(0.3)  # its runner found the lock taken and waits for its next try, a second later

    cancelled = ok(api.post(cancel_url(queued["job_id"]), headers=retry_safe), 200)
    # The other run ends, well before the runner's next poll: a runner that ignored the cancel would take the
    # lock then, and run.
    set_lock(db, integration["id"], None)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancel_requested_at"] is not None
    assert cancelled["completed_at"] == cancelled["cancel_requested_at"]
    assert cancelled["started_at"] is None
    # A retry with the same Idempotency-Key answers the first result.
    replay = api.post(cancel_url(queued["job_id"]), headers=retry_safe)
    assert (replay.status_code, replay.json()["data"]) == (200, cancelled)
    time.sleep(1.5)  # past the runner's next poll
    job = ok(api.get(f"{JOBS}/{queued['job_id']}", headers=account.headers))
    assert job == cancelled
    assert all_items(api, account, queued["job_id"]) == []
    assert (source.request_count, destination.received_count) == (0, 0)
    assert active_job(db, integration["id"]) is None
    assert events_of(db, queued["job_id"]) == ["IntegrationJobCancelled"]
    with db.connect() as conn:
        actions = conn.execute(
            select(AuditLog.action).where(AuditLog.resource_id == queued["job_id"]).order_by(AuditLog.seq)
        ).scalars()
        assert list(actions) == ["integration.job.start", "integration.job.cancel"]

    # Nothing left to stop, and a new run of the integration works as usual.
    error = err(api.post(cancel_url(queued["job_id"]), headers=account.headers), 409, "JOB_FINISHED")
    assert error["details"]["status"] == "cancelled"
    after = wait_for(api, account, ok(api.post(PROCESS, json={}, headers=account.headers), 202)["job_id"], 15)
    assert (after["status"], after["results"]["processed"]) == ("completed", 4), after
    assert destination.accepted_count == 4
    assert active_job(db, integration["id"]) is None


# --- a running job ------------------------------------------------------------------------------------------


def test_a_running_job_stops_at_the_next_page_and_keeps_every_accepted_push(
    api: TestClient, db: Engine, source: SourceServer, destination: DestinationServer
) -> None:
    account = register(api)
    documents = valid_unique_examples(12)
    source.add(*documents)
    destination.set_faults(lambda _number, _key: Fault.slow(0.3))  # ~0.3 s a page: 6 pages of 2
    integration = create(api, account, source.url, destination.url, page_size=2)
    started = ok(api.post(PROCESS, json={}, headers=account.headers), 202)
    job_id = started["job_id"]

    until(lambda: destination.received_count >= 1)  # the first page is being pushed
    requested = ok(api.post(cancel_url(job_id), headers=account.headers), 202)
    assert requested["status"] == "running"
    assert requested["cancel_requested_at"] is not None
    again = ok(api.post(cancel_url(job_id), headers=account.headers), 202)
    assert again["cancel_requested_at"] == requested["cancel_requested_at"]

    job = wait_for(api, account, job_id, 15)
    assert job["status"] == "cancelled", job
    assert job["cancel_requested_at"] == requested["cancel_requested_at"]
    assert job["completed_at"] is not None
    assert job["error"] is None

    # The page in progress was recorded: whatever the destination accepted is `sent`, in the job and the ledger.
    until(lambda: destination.in_flight == 0)
    items = all_items(api, account, job_id)
    accepted = accepted_source_ids(destination, documents)
    sent = {item["source_id"] for item in items if item["outcome"] == "sent"}
    assert accepted, "the first page's pushes were accepted"
    assert sent == accepted
    assert {item["outcome"] for item in items} == {"sent"}  # nothing left `pushing`
    assert job["results"]["processed"] == len(sent)
    assert ledger_of(db, job_id) == {
        (item["supplier_key"], item["invoice_number"]) for item in items if item["outcome"] == "sent"
    }
    # …and it went no further: fewer pages than the source has, nothing pushed after the stop.
    assert len(accepted) < len(documents)
    assert max(item["page_no"] for item in items) < len(documents) // 2 - 1
    assert destination.received_count == len(accepted)
    assert active_job(db, integration["id"]) is None
    assert events_of(db, job_id) == ["IntegrationJobCancelled"]
    error = err(api.post(cancel_url(job_id), headers=account.headers), 409, "JOB_FINISHED")
    assert error["details"] == {"job_id": job_id, "status": "cancelled"}

    # The next run sends the rest and nothing twice.
    destination.set_faults(None)
    rest = wait_for(api, account, ok(api.post(PROCESS, json={}, headers=account.headers), 202)["job_id"], 15)
    assert rest["status"] == "completed", rest
    assert rest["results"]["processed"] == len(documents) - len(accepted)
    assert destination.accepted_count == len(documents)
    assert destination.duplicate_count == 0
    assert all(len(bodies) == 1 for bodies in destination.by_invoice.values())


def test_a_stop_asked_while_a_page_is_fetched_pushes_nothing_of_it(
    api: TestClient, db: Engine, source: SourceServer, destination: DestinationServer
) -> None:
    account = register(api)
    source.add(*valid_unique_examples(4))
    source.faults = {1: Fault.slow(0.5)}  # the first page takes a while to come
    create(api, account, source.url, destination.url, page_size=2)
    job_id = ok(api.post(PROCESS, json={}, headers=account.headers), 202)["job_id"]
    until(lambda: source.request_count >= 1)
    assert ok(api.post(cancel_url(job_id), headers=account.headers), 202)["status"] == "running"

    job = wait_for(api, account, job_id, 15)
    assert job["status"] == "cancelled", job
    assert job["results"]["total_invoices"] == 0
    assert all_items(api, account, job_id) == []
    assert destination.received_count == 0
    assert ledger_of(db, job_id) == set()


@pytest.mark.anyio
async def test_a_page_begun_before_a_crash_is_finished_after_the_stop(
    database: Database, database_url: str, db: Engine, tmp_path: Path
) -> None:
    """The runner dies between a page's pushes and their recording; the job is cancelled; run again, it
    finishes that page (its pushes are in the ledger) and fetches no other."""
    settings = settings_for(database_url, tmp_path)
    documents = valid_unique_examples(6)
    hold = threading.Event()
    hold.set()

    def faults(_number: int, _key: str | None) -> Fault | None:
        # Accepted, and the answer held back: the runner is killed while it waits for it.
        return Fault.timeout(3.0, after_accept=True) if hold.is_set() else None

    with SourceServer(documents) as source, DestinationServer(faults=faults) as destination:
        org = await make_org(database)
        integration = await make_integration(
            database, settings, org, http_integration(source.url, destination.url, page_size=2)
        )
        job_id = await make_job(database, integration)
        runner = asyncio.create_task(jobs.run_job(database, job_id, settings=settings))
        deadline = time.monotonic() + 10
        while destination.accepted_count < 2:
            assert time.monotonic() < deadline
            assert not runner.done()
            await asyncio.sleep(0.01)
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        assert {outcome for outcome, _rules in item_outcomes(db, job_id).values()} == {"pushing"}
        hold.clear()

        async with database.write_sessions() as session:
            row = await session.get(IntegrationJob, job_id)
            assert row is not None
            _, cancelled_now = await cancel_job(session, system_actor(org), row)
            await session.commit()
        assert not cancelled_now  # running: only asked to stop

        summary = await jobs.run_job(database, job_id, settings=settings)

        assert summary.status == "cancelled"
        items = item_outcomes(db, job_id)
        assert {source_id: outcome for source_id, (outcome, _rules) in items.items()} == {
            documents[0][0]: "sent",
            documents[1][0]: "sent",
        }
        assert summary.processed == 2
        assert len(ledger_of(db, str(job_id))) == 2
        assert destination.accepted_count == 2  # the page was pushed again with the same keys: no new copy
        assert all(len(bodies) == 2 for bodies in destination.by_key.values())


@pytest.mark.anyio
async def test_sync_cancel_on_the_command_line(
    database: Database, database_url: str, db: Engine, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    org = await make_org(database)
    integration = await make_integration(
        database, settings, org, http_integration("http://127.0.0.1:9/src", "http://127.0.0.1:9/dst")
    )
    job_id = await make_job(database, integration)  # queued: nothing runs it here
    env = {
        "INVOICEFLOW_DATABASE_URL": database_url,
        "INVOICEFLOW_DATA_DIR": str(tmp_path / "cli"),
        "INVOICEFLOW_SECRET_KEY": settings.secret_key.get_secret_value(),
    }

    first = await asyncio.to_thread(run_cli, "sync", "cancel", str(job_id), cwd=tmp_path, env=env)
    assert "cancelled" in first.stdout
    assert (await load_job(database, job_id)).status == "cancelled"
    assert events_of(db, str(job_id)) == ["IntegrationJobCancelled"]
    again = await asyncio.to_thread(run_cli, "sync", "cancel", str(job_id), cwd=tmp_path, env=env, check=False)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "JOB_FINISHED" in again.stdout
    usage = await asyncio.to_thread(run_cli, "sync", "cancel", "nope", cwd=tmp_path, env=env, check=False)
    assert usage.returncode == 2


# --- refusals -----------------------------------------------------------------------------------------------


def test_cancel_refuses_finished_foreign_unknown_and_anonymous(
    api: TestClient, db: Engine, source: SourceServer, destination: DestinationServer
) -> None:
    account, intruder = register(api), register(api, org="Intruder BV")
    source.add(*valid_unique_examples(1))
    create(api, account, source.url, destination.url)
    job = wait_for(api, account, ok(api.post(PROCESS, json={}, headers=account.headers), 202)["job_id"], 15)
    assert job["status"] == "completed"

    error = err(api.post(cancel_url(job["job_id"]), headers=account.headers), 409, "JOB_FINISHED")
    assert error["details"] == {"job_id": job["job_id"], "status": "completed"}
    assert ok(api.get(f"{JOBS}/{job['job_id']}", headers=account.headers)) == job
    assert events_of(db, job["job_id"]) == ["IntegrationJobCompleted"]

    # Members may cancel, as they may start runs (an API key acts as a member): past the permission check.
    member = {"X-API-Key": create_api_key(api, account)["key"]}
    err(api.post(cancel_url(job["job_id"]), headers=member), 409, "JOB_FINISHED")

    err(api.post(cancel_url(job["job_id"]), headers=intruder.headers), 404, "JOB_NOT_FOUND")
    err(api.post(cancel_url(str(uuid.uuid4())), headers=account.headers), 404, "JOB_NOT_FOUND")
    err(api.post(cancel_url(job["job_id"])), 401, "UNAUTHORIZED")
    err(api.post(cancel_url("not-a-job-id"), headers=account.headers), 422, "VALIDATION_ERROR")


# --- as a DBOS workflow -------------------------------------------------------------------------------------


def test_a_running_job_workflow_ends_cancelled(rules_app: TestClient, wf_client: TestClient) -> None:  # noqa: F811
    documents = valid_unique_examples(10)
    with SourceServer(documents) as source, DestinationServer() as destination:
        destination.set_faults(lambda _number, _key: Fault.slow(0.3))
        account = register(wf_client)
        create(wf_client, account, source.url, destination.url, page_size=2)
        started = ok(wf_client.post(PROCESS, json={}, headers=account.headers), 202)
        until(lambda: destination.received_count >= 1)
        requested = ok(wf_client.post(cancel_url(started["job_id"]), headers=account.headers), 202)
        assert requested["status"] == "running"

        job = wait_for(wf_client, account, started["job_id"], 15)
        assert job["status"] == "cancelled", job
        accepted = accepted_source_ids(destination, documents)
        assert 0 < len(accepted) < len(documents)
        assert job["results"]["processed"] == len(accepted)

        workflow_url = f"/api/v1/workflows/integration-job-{started['job_id']}"
        workflow = until(
            lambda: (w := ok(wf_client.get(workflow_url, headers=account.headers)))["status"] == "succeeded" and w
        )
        assert [step["name"] for step in workflow["steps"]] == ["job_start", "job_page", "job_finish"]
