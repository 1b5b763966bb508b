"""Scale-out: two worker processes on PostgreSQL share a queue of invoices; one is killed with workflows
in flight; the other finishes all of them (dead-executor recovery), none twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from invoiceflow.main import create_app
from tests.conftest import _empty_tables, make_settings
from tests.factories import create_client, create_invoice, event_rows, register
from tests.notifications.conftest import RecordingHandler, SmtpServer
from tests.servers import free_port
from tests.workflows.workers import start_worker, stop_worker, wait_until_all, worker_env

INVOICES = 40


@pytest.mark.slow
def test_a_surviving_worker_finishes_the_workflows_of_a_killed_one(
    database_url: str, sync_engine: Engine, tmp_path: Path
) -> None:
    if sync_engine.dialect.name != "postgresql":
        pytest.skip("several worker processes is the PostgreSQL mode")
    _empty_tables(sync_engine)
    smtp = SmtpServer(free_port(), RecordingHandler())
    smtp.start()
    try:
        settings = make_settings(database_url, tmp_path, smtp_url=smtp.url())
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            account = register(client)
            buyer = create_client(client, account)
            invoice_ids = []
            for _ in range(INVOICES):
                invoice = create_invoice(client, account, buyer["id"])
                assert client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers).status_code == 200
                invoice_ids.append(invoice["id"])
        workflow_ids = {f"invoice-{i}" for i in invoice_ids}

        env = worker_env(
            database_url,
            tmp_path,
            smtp.url(),
            INVOICEFLOW_WORKFLOW_HEARTBEAT_SECONDS="0.5",
            INVOICEFLOW_WORKFLOW_DEAD_AFTER_SECONDS="4",
        )
        log = tmp_path / "workers.log"
        # w1 dies (SIGKILL) as soon as one of its workflows has sent its email; the rest of its batch is
        # left PENDING on it, and it never comes back.
        doomed = start_worker(env, executor_id="w1", failpoints="invoice.email", log=log)
        survivor = start_worker(env, executor_id="w2", log=log)
        try:
            assert doomed.wait(timeout=120) == -9, log.read_text()
            with sync_engine.connect() as conn:
                stranded = set(
                    conn.execute(
                        text(
                            "SELECT workflow_uuid FROM dbos.workflow_status"
                            " WHERE executor_id = 'w1' AND status = 'PENDING'"
                        )
                    ).scalars()
                )
            assert stranded, "the killed worker had no workflow in flight: the test proves nothing"
            wait_until_all(sync_engine, workflow_ids, "SUCCESS", timeout=180, process=survivor)
        finally:
            assert stop_worker(survivor) == 0, log.read_text()

        with sync_engine.connect() as conn:
            finished_by = dict(
                conn.execute(
                    text("SELECT workflow_uuid, executor_id FROM dbos.workflow_status WHERE workflow_uuid = ANY(:ids)"),
                    {"ids": list(stranded)},
                ).all()
            )
            documents = conn.execute(text("SELECT format FROM documents")).scalars().all()
            deliveries = conn.execute(text("SELECT resource_id, status, message_id FROM notification_deliveries")).all()
        assert set(finished_by.values()) == {"w2"}
        assert Counter(documents) == {"pdf": INVOICES}
        assert sorted(d.resource_id for d in deliveries) == sorted(invoice_ids)
        assert {d.status for d in deliveries} == {"sent"}
        assert set(Counter(m.message["Message-ID"] for m in smtp.messages)) == {d.message_id for d in deliveries}
        for invoice_id in invoice_ids:
            for event_type in ("PDFGenerated", "EmailSent", "InvoiceProcessed"):
                assert len(event_rows(sync_engine, type=event_type, resource_id=invoice_id)) == 1, event_type
    finally:
        smtp.stop()
