"""The payment-reminder run under a controlled clock, counting real messages on a local SMTP server."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from invoiceflow.clients.models import Client
from invoiceflow.core.db import Database
from invoiceflow.documents.service import DocumentStore
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.overdue import run_overdue_sweep
from invoiceflow.notifications.reminders import current_stage, run_reminders
from invoiceflow.notifications.service import Notifier
from tests.factories import assert_error, error_fields
from tests.notifications.conftest import IssuedInvoice, SmtpServer, delivery_rows, issue_invoice

pytestmark = pytest.mark.anyio

BRUSSELS = ZoneInfo("Europe/Brussels")
DUE = date(2026, 10, 27)  # the autumn change (25 October) falls inside the run window


def at_eight(day: date) -> datetime:
    """08:00 on `day` in Brussels, as UTC: when the daily job fires."""
    return datetime.combine(day, time(8, 0), tzinfo=BRUSSELS).astimezone(UTC)


def due_on(db: Engine, invoice_id: uuid.UUID, due: date) -> None:
    with db.begin() as conn:
        conn.execute(update(Invoice).where(Invoice.id == invoice_id).values(due_date=due))


def stages_sent(db: Engine, issued: IssuedInvoice) -> list[int]:
    rows = [r for r in delivery_rows(db, issued.organization_id) if r.status == "sent"]
    return sorted(int(r.dedupe_key.rsplit(":", 1)[1]) for r in rows)


async def run_day(database: Database, notifier: Notifier, store: DocumentStore, day: date) -> dict[str, Any]:
    now = at_eight(day)
    await run_overdue_sweep(database, now_utc=now)
    return await run_reminders(database, notifier, store=store, now_utc=now)


def test_the_stage_is_the_latest_offset_reached() -> None:
    policy = [-3, 0, 7, 14]
    assert current_stage(policy, due_date=DUE, on=DUE - timedelta(days=4)) is None
    assert current_stage(policy, due_date=DUE, on=DUE - timedelta(days=3)) == -3
    assert current_stage(policy, due_date=DUE, on=DUE - timedelta(days=1)) == -3
    assert current_stage(policy, due_date=DUE, on=DUE) == 0
    assert current_stage(policy, due_date=DUE, on=DUE + timedelta(days=13)) == 7
    assert current_stage(policy, due_date=DUE, on=DUE + timedelta(days=300)) == 14
    assert current_stage([], due_date=DUE, on=DUE) is None


async def test_a_daily_job_sends_each_stage_once_on_its_day(
    notifier: Notifier, store: DocumentStore, database: Database, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    due_on(db, issued.invoice_id, DUE)
    sent_on: list[date] = []
    for offset in range(-5, 21):
        day = DUE + timedelta(days=offset)
        before = len(smtp.messages)
        first = await run_day(database, notifier, store, day)
        again = await run_day(database, notifier, store, day)
        assert (first["ran"], again["ran"], again["already_ran"], again["sent"]) == (1, 0, 1, 0)
        sent_on += [day] * (len(smtp.messages) - before)

    assert sent_on == [DUE - timedelta(days=3), DUE, DUE + timedelta(days=7), DUE + timedelta(days=14)]
    assert stages_sent(db, issued) == [-3, 0, 7, 14]
    assert {m.rcpt_tos[0] for m in smtp.messages} == {issued.client_email}
    week = smtp.messages[2].message.get_body(("plain",))
    assert week is not None
    assert "7 days ago" in week.get_content()


async def test_a_paid_invoice_gets_no_more_reminders(
    client: TestClient,
    notifier: Notifier,
    store: DocumentStore,
    database: Database,
    smtp: SmtpServer,
    issued: IssuedInvoice,
    db: Engine,
) -> None:
    due_on(db, issued.invoice_id, DUE)
    for offset in range(-5, 2):
        await run_day(database, notifier, store, DUE + timedelta(days=offset))
    r = client.post(f"/api/v1/invoices/{issued.invoice_id}/payments", json={"amount": "559.74"}, headers=issued.headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["invoice"]["status"] == "paid"
    results = [await run_day(database, notifier, store, DUE + timedelta(days=d)) for d in range(2, 21)]

    assert stages_sent(db, issued) == [-3, 0]
    assert len(smtp.messages) == 2
    assert sum(r["sent"] for r in results) == 0


async def test_a_missed_stretch_catches_up_only_the_latest_stage(
    notifier: Notifier, store: DocumentStore, database: Database, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    due_on(db, issued.invoice_id, DUE)
    # Nothing ran from D-5 to D+8: on D+9 the latest stage reached is D+7, the only one sent.
    late = await run_day(database, notifier, store, DUE + timedelta(days=9))
    assert (late["sent"], stages_sent(db, issued)) == (1, [7])
    for offset in range(10, 14):
        await run_day(database, notifier, store, DUE + timedelta(days=offset))
    assert len(smtp.messages) == 1
    # A later stage is still sent on its day.
    await run_day(database, notifier, store, DUE + timedelta(days=14))
    assert stages_sent(db, issued) == [7, 14]
    assert len(smtp.messages) == 2


async def test_clients_without_email_and_empty_policies_are_counted_not_sent(
    client: TestClient,
    notifier: Notifier,
    store: DocumentStore,
    database: Database,
    smtp: SmtpServer,
    db: Engine,
) -> None:
    without = issue_invoice(client)
    with db.begin() as conn:
        conn.execute(update(Client).where(Client.id == without.client_id).values(email=None))
    quiet = issue_invoice(client)
    r = client.patch("/api/v1/organization", json={"reminder_policy": []}, headers=quiet.headers)
    assert r.status_code == 200, r.text
    for invoice in (without, quiet):
        due_on(db, invoice.invoice_id, DUE)

    result = await run_reminders(database, notifier, store=store, now_utc=at_eight(DUE))

    assert (result["organizations"], result["ran"], result["no_email"], result["sent"]) == (2, 2, 1, 0)
    assert smtp.messages == []


def test_the_organization_reads_and_updates_its_time_zone_and_policy(client: TestClient) -> None:
    issued = issue_invoice(client)
    r = client.get("/api/v1/organization", headers=issued.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["timezone"], data["reminder_policy"]) == ("Europe/Brussels", [-3, 0, 7, 14])

    body = {"timezone": "America/New_York", "reminder_policy": [30, -7, 0]}
    r = client.patch("/api/v1/organization", json=body, headers=issued.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["timezone"], r.json()["data"]["reminder_policy"]) == ("America/New_York", [-7, 0, 30])
    r = client.get("/api/v1/organization", headers=issued.headers)
    assert r.json()["data"]["timezone"] == "America/New_York"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"reminder_policy": [-61]}, "reminder_policy"),
        ({"reminder_policy": [366]}, "reminder_policy"),
        ({"reminder_policy": [7, 7]}, "reminder_policy"),
        ({"reminder_policy": list(range(11))}, "reminder_policy"),
        ({"reminder_policy": None}, "reminder_policy"),
    ],
)
def test_bad_time_zones_and_policies_are_refused(client: TestClient, body: dict[str, Any], field: str) -> None:
    issued = issue_invoice(client)
    r = client.patch("/api/v1/organization", json=body, headers=issued.headers)
    assert_error(r, 422)
    assert any(f.startswith(field) for f in error_fields(r)), r.text
    r = client.get("/api/v1/organization", headers=issued.headers)
    assert (r.json()["data"]["timezone"], r.json()["data"]["reminder_policy"]) == ("Europe/Brussels", [-3, 0, 7, 14])
