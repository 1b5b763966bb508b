"""The daily overdue sweep: sent invoices past their due date become `overdue`.

Schedules fire on a clock, but the work belongs to a *business date*: the date on the organisation's own
wall clock (`Organization.timezone`). A run is identified by (job, organisation, business date) and
recorded in `schedule_runs` in the same transaction as its changes, so a second firing on the same local
date (02:00 happens twice when the clocks go back; a retried or doubled cron) finds the row and does nothing.
Emits `InvoiceStatusChanged` (sent → overdue) for each invoice it marks, audited by the system actor.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import system_actor
from invoiceflow.core.db import Database, utcnow
from invoiceflow.core.models import Organization, ScheduleRun
from invoiceflow.core.records import record_audit, record_event
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.service import _money_payload

OVERDUE_SWEEP = "overdue_sweep"


def business_date(moment_utc: datetime, tz: str) -> date:
    """The calendar date at `moment_utc` on the wall clock of time zone `tz` (an IANA name)."""
    if moment_utc.tzinfo is None:
        raise ValueError("moment_utc must be timezone-aware")
    return moment_utc.astimezone(ZoneInfo(tz)).date()


async def organization_zones(db: Database) -> list[tuple[uuid.UUID, str, list[int]]]:
    """Every organisation with its time zone and reminder policy."""
    async with db.read_sessions() as session:
        rows = await session.execute(
            select(Organization.id, Organization.timezone, Organization.reminder_policy).order_by(Organization.id)
        )
        return [(org_id, tz, list(policy or [])) for org_id, tz, policy in rows]


async def claim_run(
    session: AsyncSession, *, name: str, organization_id: uuid.UUID, business_date: date
) -> ScheduleRun | None:
    """Start the run (name, organisation, business date) in `session`'s transaction.

    Returns the new row, or None when that run already exists. Call it first in the transaction: on
    PostgreSQL a concurrent claim waits on the unique index until the first one commits, then fails here
    and the transaction (which holds nothing else yet) is rolled back. SQLite has one writer.
    """
    existing = await session.execute(
        select(ScheduleRun.id).where(
            ScheduleRun.name == name,
            ScheduleRun.organization_id == organization_id,
            ScheduleRun.business_date == business_date,
        )
    )
    if existing.first() is not None:
        return None
    run = ScheduleRun(id=uuid.uuid4(), name=name, organization_id=organization_id, business_date=business_date)
    session.add(run)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return None
    return run


async def mark_overdue(session: AsyncSession, *, organization_id: uuid.UUID, business_date: date) -> list[uuid.UUID]:
    """Mark the organisation's sent invoices due before `business_date` as overdue; returns their ids.

    Due on the 24th means payable through the 24th: overdue from the 25th. Credit notes are never overdue
    (invoices/transitions.py). The rows are locked (`FOR UPDATE`, waiting rather than skipping: PostgreSQL
    re-checks the status of a row a concurrent payment just changed, so a paid invoice is left alone and no
    invoice is missed for the day). Idempotent: a second call finds no sent invoice to change.
    """
    stmt = (
        select(Invoice)
        .where(
            Invoice.organization_id == organization_id,
            Invoice.kind == "invoice",
            Invoice.status == "sent",
            Invoice.due_date < business_date,
            Invoice.deleted_at.is_(None),
        )
        .order_by(Invoice.id)
        .with_for_update(of=Invoice)
        .execution_options(populate_existing=True)
    )
    invoices = list((await session.execute(stmt)).scalars())
    actor = system_actor(organization_id)
    now = utcnow()
    for invoice in invoices:
        invoice.status = "overdue"
        invoice.updated_at = now
        record_event(
            session,
            organization_id=organization_id,
            type="InvoiceStatusChanged",
            resource_type="invoice",
            resource_id=invoice.id,
            payload={**_money_payload(invoice), "from": "sent", "to": "overdue"},
        )
        record_audit(
            session,
            actor,
            action="invoice.status",
            resource_type="invoice",
            resource_id=invoice.id,
            details={"from": "sent", "to": "overdue", "by": OVERDUE_SWEEP, "business_date": business_date.isoformat()},
        )
    await session.flush()
    return [invoice.id for invoice in invoices]


async def run_overdue_sweep(db: Database, *, now_utc: datetime) -> dict[str, Any]:
    """Run the sweep for every organisation at its own business date at `now_utc`.

    One transaction per organisation: its run row and its changes commit together, so a crash leaves
    either both or neither, and the next firing on that date does the work or finds it done.
    """
    summary: dict[str, Any] = {"organizations": 0, "ran": 0, "already_ran": 0, "marked": 0}
    for org_id, tz, _policy in await organization_zones(db):
        summary["organizations"] += 1
        day = business_date(now_utc, tz)
        async with db.locked_write_session() as session:
            run = await claim_run(session, name=OVERDUE_SWEEP, organization_id=org_id, business_date=day)
            if run is None:
                summary["already_ran"] += 1
                continue
            marked = await mark_overdue(session, organization_id=org_id, business_date=day)
            run.finished_at = utcnow()
            run.result = {"marked": len(marked)}
            await session.commit()
        summary["ran"] += 1
        summary["marked"] += len(marked)
    return summary
