"""The overdue sweep under a controlled clock: each firing passes `now_utc`, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from invoiceflow.core.context import SYSTEM_USER_AGENT
from invoiceflow.core.db import Database
from invoiceflow.core.models import ScheduleRun
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.overdue import OVERDUE_SWEEP, business_date, mark_overdue, run_overdue_sweep
from tests.factories import Account, audit_rows, create_client, create_invoice, event_rows, register

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


def sent_invoice(client: TestClient, account: Account, db: Engine, *, due: date) -> str:
    """A sent invoice whose due date is then moved to `due` (the API refuses due dates in the past)."""
    buyer = create_client(client, account)
    invoice = create_invoice(client, account, buyer["id"])
    r = client.patch(f"/api/v1/invoices/{invoice['id']}/status", json={"status": "sent"}, headers=account.headers)
    assert r.status_code == 200, r.text
    with db.begin() as conn:
        conn.execute(update(Invoice).where(Invoice.id == uuid.UUID(invoice["id"])).values(due_date=due))
    return str(invoice["id"])


def status_of(db: Engine, invoice_id: str) -> str:
    with Session(db) as session:
        return session.scalars(select(Invoice.status).where(Invoice.id == uuid.UUID(invoice_id))).one()


def runs(db: Engine) -> list[tuple[str, date]]:
    with Session(db) as session:
        return [
            (r.name, r.business_date) for r in session.scalars(select(ScheduleRun).order_by(ScheduleRun.started_at))
        ]


def test_the_business_date_is_the_local_date() -> None:
    assert business_date(datetime(2026, 10, 24, 21, 59, tzinfo=UTC), "Europe/Brussels") == date(2026, 10, 24)
    assert business_date(datetime(2026, 10, 24, 22, 30, tzinfo=UTC), "Europe/Brussels") == date(2026, 10, 25)
    # After the autumn change Brussels is UTC+1: 23:30 UTC is already the next local day.
    assert business_date(datetime(2026, 10, 25, 22, 59, tzinfo=UTC), "Europe/Brussels") == date(2026, 10, 25)
    assert business_date(datetime(2026, 10, 25, 23, 30, tzinfo=UTC), "Europe/Brussels") == date(2026, 10, 26)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_date(datetime(2026, 10, 25, 12, 0), "Europe/Brussels")


async def test_an_invoice_becomes_overdue_on_the_local_day_after_its_due_date(
    client: TestClient, database: Database, db: Engine
) -> None:
    account = register(client)
    invoice_id = sent_invoice(client, account, db, due=date(2026, 10, 24))

    # 23:59 on the 24th in Brussels: still payable.
    before = await run_overdue_sweep(database, now_utc=datetime(2026, 10, 24, 21, 59, tzinfo=UTC))
    assert before == {"organizations": 1, "ran": 1, "already_ran": 0, "marked": 0}
    assert status_of(db, invoice_id) == "sent"

    # 00:30 on the 25th in Brussels (UTC+2), while the UTC date is still the 24th.
    after = await run_overdue_sweep(database, now_utc=datetime(2026, 10, 24, 22, 30, tzinfo=UTC))
    assert after == {"organizations": 1, "ran": 1, "already_ran": 0, "marked": 1}
    assert status_of(db, invoice_id) == "overdue"
    (event,) = event_rows(db, type="InvoiceStatusChanged", resource_id=invoice_id)[-1:]
    assert (event.payload["from"], event.payload["to"], event.payload["due_date"]) == ("sent", "overdue", "2026-10-24")
    (audit,) = [
        a for a in audit_rows(db, action="invoice.status", resource_id=invoice_id) if a.details["to"] == "overdue"
    ]
    assert (audit.actor_user_id, audit.actor_api_key_id, audit.user_agent) == (None, None, SYSTEM_USER_AGENT)
    assert audit.details["business_date"] == "2026-10-25"
    assert runs(db) == [(OVERDUE_SWEEP, date(2026, 10, 24)), (OVERDUE_SWEEP, date(2026, 10, 25))]


async def test_the_autumn_clock_change_fires_twice_at_two_but_runs_once(
    client: TestClient, database: Database, db: Engine
) -> None:
    account = register(client)
    invoice_id = sent_invoice(client, account, db, due=date(2026, 10, 24))
    changes_before = len(event_rows(db, type="InvoiceStatusChanged"))

    # 02:00 local happens twice on 2026-10-25: at 00:00 UTC (CEST) and at 01:00 UTC (CET).
    first = await run_overdue_sweep(database, now_utc=datetime(2026, 10, 25, 0, 0, tzinfo=UTC))
    second = await run_overdue_sweep(database, now_utc=datetime(2026, 10, 25, 1, 0, tzinfo=UTC))

    assert first == {"organizations": 1, "ran": 1, "already_ran": 0, "marked": 1}
    assert second == {"organizations": 1, "ran": 0, "already_ran": 1, "marked": 0}
    assert status_of(db, invoice_id) == "overdue"
    assert len(event_rows(db, type="InvoiceStatusChanged")) == changes_before + 1
    assert len([a for a in audit_rows(db, action="invoice.status") if a.details["to"] == "overdue"]) == 1
    assert runs(db) == [(OVERDUE_SWEEP, date(2026, 10, 25))]


async def test_the_spring_clock_change_has_no_two_oclock_and_still_one_run(
    client: TestClient, database: Database, db: Engine
) -> None:
    account = register(client)
    invoice_id = sent_invoice(client, account, db, due=date(2026, 3, 28))

    # On 2026-03-29 01:59 CET is followed by 03:00 CEST: a 02:00 schedule fires at one of them.
    first = await run_overdue_sweep(database, now_utc=datetime(2026, 3, 29, 0, 59, tzinfo=UTC))
    second = await run_overdue_sweep(database, now_utc=datetime(2026, 3, 29, 1, 0, tzinfo=UTC))

    assert (first["ran"], first["marked"], second["ran"], second["already_ran"]) == (1, 1, 0, 1)
    assert status_of(db, invoice_id) == "overdue"
    assert runs(db) == [(OVERDUE_SWEEP, date(2026, 3, 29))]


async def test_each_organisation_uses_its_own_time_zone(client: TestClient, database: Database, db: Engine) -> None:
    brussels = register(client, org="Brussels BV")
    new_york = register(client, org="New York Inc")
    r = client.patch("/api/v1/organization", json={"timezone": "America/New_York"}, headers=new_york.headers)
    assert r.status_code == 200, r.text
    in_brussels = sent_invoice(client, brussels, db, due=date(2026, 10, 24))
    in_new_york = sent_invoice(client, new_york, db, due=date(2026, 10, 24))

    # 00:30 on the 25th in Brussels is 18:30 on the 24th in New York.
    result = await run_overdue_sweep(database, now_utc=datetime(2026, 10, 24, 22, 30, tzinfo=UTC))

    assert result == {"organizations": 2, "ran": 2, "already_ran": 0, "marked": 1}
    assert (status_of(db, in_brussels), status_of(db, in_new_york)) == ("overdue", "sent")
    assert sorted(d for _, d in runs(db)) == [date(2026, 10, 24), date(2026, 10, 25)]


async def test_mark_overdue_is_idempotent_and_leaves_settled_invoices_alone(
    client: TestClient, database: Database, db: Engine
) -> None:
    account = register(client)
    org = uuid.UUID(account.organization_id)
    late = sent_invoice(client, account, db, due=date(2026, 10, 1))
    paid = sent_invoice(client, account, db, due=date(2026, 10, 1))
    r = client.patch(f"/api/v1/invoices/{paid}/status", json={"status": "paid"}, headers=account.headers)
    assert r.status_code == 200, r.text
    buyer = create_client(client, account)
    draft = create_invoice(client, account, buyer["id"])
    with db.begin() as conn:
        conn.execute(update(Invoice).where(Invoice.id == uuid.UUID(draft["id"])).values(due_date=date(2026, 10, 1)))

    async with database.locked_write_session() as session:
        first = await mark_overdue(session, organization_id=org, business_date=date(2026, 10, 20))
        await session.commit()
    events = len(event_rows(db))
    async with database.locked_write_session() as session:
        second = await mark_overdue(session, organization_id=org, business_date=date(2026, 10, 20))
        await session.commit()

    assert first == [uuid.UUID(late)]
    assert second == []
    assert len(event_rows(db)) == events
    assert (status_of(db, late), status_of(db, paid), status_of(db, draft["id"])) == ("overdue", "paid", "draft")
