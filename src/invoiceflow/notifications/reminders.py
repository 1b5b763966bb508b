"""The daily payment-reminder run: each organisation's reminder policy applied at its business date.

A policy is a list of day offsets from the due date (default -3, 0, 7, 14); an empty list sends nothing.
Each (invoice, stage) is emailed at most once: `payment_reminder_email` keys its delivery on
`payment_reminder:{invoice_id}:{stage}`, so a repeated run on the same day sends nothing more.

Catch-up rule: on a business date the invoice's *stage* is the latest offset already reached
(`offset <= business_date - due_date`). If that stage was not sent yet it is sent now, whether it was
reached today or on a day the job did not run. Earlier stages missed along the way are never sent: after a
missed week the client gets one reminder, the current one, not a backlog. The job never sends a stage
before its day.

Runs are recorded in `schedule_runs` (job `payment_reminders`, organisation, business date). Sending is
not transactional, so the row is written when the run starts and finished when it ends: a finished run is
not repeated that day, an unfinished one (a crash) is resumed by the next firing, and the dedupe keys keep
the resumed run from sending anything twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.db import Database, utcnow
from invoiceflow.core.models import ScheduleRun
from invoiceflow.documents.service import DocumentStore
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.overdue import business_date, organization_zones
from invoiceflow.notifications.models import NotificationDelivery
from invoiceflow.notifications.service import (
    DeliveryInProgress,
    Notifier,
    RecipientMissing,
    payment_reminder_email,
)

log = logging.getLogger(__name__)

PAYMENT_REMINDERS = "payment_reminders"


def reminder_key(invoice_id: uuid.UUID, stage: int) -> str:
    # The dedupe key payment_reminder_email uses.
    return f"payment_reminder:{invoice_id}:{stage}"


def current_stage(policy: Sequence[int], *, due_date: date, on: date) -> int | None:
    """The latest offset of `policy` reached on `on` for an invoice due on `due_date`, or None."""
    days = (on - due_date).days
    reached = [offset for offset in policy if offset <= days]
    return max(reached) if reached else None


async def due_reminders(
    session: AsyncSession, *, organization_id: uuid.UUID, business_date: date, policy: Sequence[int]
) -> list[tuple[uuid.UUID, int]]:
    """(invoice id, stage) of each reminder to send on `business_date` (see the module's catch-up rule).

    Only issued invoices (not credit notes) still outstanding: `sent` or `overdue` with an amount due
    (EN 16931 BR-CO-16: total + rounding - paid) above zero. Stages already sent are left out.
    """
    if not policy:
        return []
    outstanding = (
        select(Invoice.id, Invoice.due_date)
        .where(
            Invoice.organization_id == organization_id,
            Invoice.kind == "invoice",
            Invoice.status.in_(("sent", "overdue")),
            Invoice.deleted_at.is_(None),
            Invoice.total_amount + Invoice.rounding_amount - Invoice.amount_paid > 0,
        )
        .order_by(Invoice.due_date, Invoice.id)
    )
    candidates: list[tuple[uuid.UUID, int]] = []
    for invoice_id, due in await session.execute(outstanding):
        stage = current_stage(policy, due_date=due, on=business_date)
        if stage is not None:
            candidates.append((invoice_id, stage))
    if not candidates:
        return []
    sent: set[str] = set()
    keys = [reminder_key(invoice_id, stage) for invoice_id, stage in candidates]
    for start in range(0, len(keys), 500):
        rows = await session.execute(
            select(NotificationDelivery.dedupe_key).where(
                NotificationDelivery.organization_id == organization_id,
                NotificationDelivery.dedupe_key.in_(keys[start : start + 500]),
                NotificationDelivery.status == "sent",
            )
        )
        sent.update(rows.scalars())
    return [(invoice_id, stage) for invoice_id, stage in candidates if reminder_key(invoice_id, stage) not in sent]


def _run_filter(organization_id: uuid.UUID, day: date) -> Any:
    return select(ScheduleRun).where(
        ScheduleRun.name == PAYMENT_REMINDERS,
        ScheduleRun.organization_id == organization_id,
        ScheduleRun.business_date == day,
    )


async def _start_run(db: Database, organization_id: uuid.UUID, day: date) -> bool:
    """Record the run as started; False when it already finished that day."""
    async with db.locked_write_session() as session:
        run = (await session.execute(_run_filter(organization_id, day))).scalar_one_or_none()
        if run is not None:
            return run.finished_at is None
        session.add(
            ScheduleRun(id=uuid.uuid4(), name=PAYMENT_REMINDERS, organization_id=organization_id, business_date=day)
        )
        try:
            await session.commit()
        except IntegrityError:
            # A concurrent firing started it first; the dedupe keys make running alongside it harmless.
            await session.rollback()
        return True


async def _finish_run(db: Database, organization_id: uuid.UUID, day: date, result: dict[str, Any]) -> None:
    async with db.locked_write_session() as session:
        run = (await session.execute(_run_filter(organization_id, day))).scalar_one()
        run.finished_at = utcnow()
        run.result = result
        await session.commit()


async def run_reminders(db: Database, notifier: Notifier, *, store: DocumentStore, now_utc: datetime) -> dict[str, Any]:
    """Send the reminders due at `now_utc`, each organisation at its own business date.

    Counts per outcome: `sent` (emailed by this run), `already_sent`, `settled` (paid or cancelled since it
    was selected), `no_email` (the client has no address: nothing recorded, retried on the next run),
    `in_progress` (a concurrent run is sending it). A failed send is logged and counted as `failed`; the
    next run tries again.
    """
    totals: dict[str, Any] = {
        "organizations": 0,
        "ran": 0,
        "already_ran": 0,
        "sent": 0,
        "already_sent": 0,
        "settled": 0,
        "no_email": 0,
        "in_progress": 0,
        "failed": 0,
    }
    for org_id, tz, policy in await organization_zones(db):
        totals["organizations"] += 1
        day = business_date(now_utc, tz)
        if not await _start_run(db, org_id, day):
            totals["already_ran"] += 1
            continue
        async with db.read_sessions() as session:
            due = await due_reminders(session, organization_id=org_id, business_date=day, policy=policy)
        result = dict.fromkeys(("sent", "already_sent", "settled", "no_email", "in_progress", "failed"), 0)
        for invoice_id, stage in due:
            outcome = await _remind(notifier, store, org_id, invoice_id, stage, day)
            result[outcome] += 1
        await _finish_run(db, org_id, day, result)
        totals["ran"] += 1
        for name, count in result.items():
            totals[name] += count
    return totals


async def _remind(
    notifier: Notifier, store: DocumentStore, org_id: uuid.UUID, invoice_id: uuid.UUID, stage: int, day: date
) -> str:
    try:
        delivery = await payment_reminder_email(
            notifier, store, organization_id=org_id, invoice_id=invoice_id, stage=stage, on=day
        )
    except RecipientMissing:
        return "no_email"
    except DeliveryInProgress:
        return "in_progress"
    except Exception:
        log.exception("payment reminder %s for invoice %s failed", stage, invoice_id)
        return "failed"
    if delivery is None:
        return "settled"
    return "sent" if delivery.delivered_now else "already_sent"
