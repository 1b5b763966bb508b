"""kill -9 inside each step of the invoice workflow, then start the worker again: every invoice ends with
its documents stored, one delivery record per email, one event row per event, and no email lost.

The worker is a real process (`invoiceflow worker`); the kill is a fail point (core/failpoints.py) that
sends SIGKILL to the worker itself after the step's side effect and before DBOS records the step.
"""

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

INVOICES = 4


@pytest.mark.slow
@pytest.mark.parametrize("step", ["documents", "email", "publish"])
def test_kill_9_inside_a_step_and_restart(step: str, database_url: str, sync_engine: Engine, tmp_path: Path) -> None:
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

        env = worker_env(database_url, tmp_path, smtp.url())
        executor = f"crash-{step}"
        log = tmp_path / "worker.log"
        doomed = start_worker(env, executor_id=executor, failpoints=f"invoice.{step}", log=log)
        assert doomed.wait(timeout=120) == -9, log.read_text()

        survivor = start_worker(env, executor_id=executor, log=log)
        try:
            wait_until_all(sync_engine, workflow_ids, "SUCCESS", timeout=120, process=survivor)
        finally:
            assert stop_worker(survivor) == 0, log.read_text()

        with sync_engine.connect() as conn:
            documents = conn.execute(text("SELECT format, storage_key, size_bytes FROM documents")).all()
            deliveries = conn.execute(text("SELECT resource_id, status, message_id FROM notification_deliveries")).all()
        assert Counter(d.format for d in documents) == {"pdf": INVOICES}
        # Every recorded document is in storage, whole. (A write the kill interrupted may leave a temporary
        # file beside them; it is never what a row names.)
        for document in documents:
            assert (tmp_path / "documents" / document.storage_key).stat().st_size == document.size_bytes
        assert sorted(d.resource_id for d in deliveries) == sorted(invoice_ids)
        assert {d.status for d in deliveries} == {"sent"}
        # No email lost: the server got every delivery's Message-ID. A send interrupted between the server's
        # acceptance and its record is repeated under the same Message-ID (mail clients show it once).
        # Only the workflows in flight at the kill can have a send in that window (the killed one among them).
        received = Counter(m.message["Message-ID"] for m in smtp.messages)
        assert set(received) == {d.message_id for d in deliveries}
        assert sum(received.values()) - INVOICES <= INVOICES
        for invoice_id in invoice_ids:
            for event_type in ("PDFGenerated", "EmailSent", "InvoiceProcessed"):
                assert len(event_rows(sync_engine, type=event_type, resource_id=invoice_id)) == 1, (event_type, step)
    finally:
        smtp.stop()
