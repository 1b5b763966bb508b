"""The scheduled workflows, fired through DBOS: the autumn clock change fires 02:00 twice in Brussels, and
each organisation's business day still runs once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from dbos import EnqueueOptions
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from invoiceflow.workflows.engine import WORKFLOWS_VERSION
from invoiceflow.workflows.router import ENGINE
from invoiceflow.workflows.schedules import SCHEDULES
from tests.factories import create_client, create_invoice, event_rows, register, utc_today
from tests.workflows.conftest import wait_for

SUMMER, WINTER = timezone(timedelta(hours=2)), timezone(timedelta(hours=1))


def _fire(app: TestClient, workflow: str, at: datetime) -> Any:
    """What DBOS's scheduler does at a firing: enqueue `sched-<name>-<time>` with (scheduled_at, context)."""
    client = app.app.state.runtime.extras[ENGINE].client  # type: ignore[attr-defined]
    workflow_id = f"sched-test-{workflow}-{at.isoformat()}"
    options = EnqueueOptions(
        workflow_name=workflow, queue_name="invoices", workflow_id=workflow_id, app_version=WORKFLOWS_VERSION
    )
    client.enqueue(options, at, None)
    return client, workflow_id


def _done(client: Any, workflow_id: str) -> str | None:
    status = client.retrieve_workflow(workflow_id).get_status().status
    return status if status in ("SUCCESS", "ERROR") else None


def test_the_autumn_double_0200_sweeps_each_organisation_once(wf_client: TestClient, db: Engine) -> None:
    account = register(wf_client)
    buyer = create_client(wf_client, account)
    invoice = create_invoice(wf_client, account, buyer["id"], due_date=utc_today().isoformat())
    assert wf_client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers).status_code == 200

    # 2027-10-31 02:00 happens twice in Europe/Brussels: at +02:00, then again an hour later at +01:00.
    for at in (datetime(2027, 10, 31, 2, 0, tzinfo=SUMMER), datetime(2027, 10, 31, 2, 0, tzinfo=WINTER)):
        client, workflow_id = _fire(wf_client, "overdue_sweep_workflow", at)
        assert wait_for(lambda c=client, w=workflow_id: _done(c, w)) == "SUCCESS"

    status = wf_client.get(f"/api/v1/invoices/{invoice['id']}", headers=account.headers).json()["data"]["status"]
    assert status == "overdue"
    changes = [
        e
        for e in event_rows(db, type="InvoiceStatusChanged", resource_id=invoice["id"])
        if e.payload["to"] == "overdue"
    ]
    assert len(changes) == 1
    with db.connect() as conn:
        runs = (
            conn.execute(text("SELECT business_date FROM schedule_runs WHERE name = 'overdue_sweep'")).scalars().all()
        )
    assert [str(day) for day in runs] == ["2027-10-31"]


def test_every_schedule_is_applied_with_its_zone(wf_client: TestClient) -> None:
    client = wf_client.app.state.runtime.extras[ENGINE].client  # type: ignore[attr-defined]
    applied = {row["schedule_name"]: row for row in client.list_schedules()}
    for schedule in SCHEDULES:
        assert applied[schedule.name]["schedule"] == schedule.cron
        assert applied[schedule.name]["cron_timezone"] == "Europe/Brussels"
        assert applied[schedule.name]["status"] == "ACTIVE"
