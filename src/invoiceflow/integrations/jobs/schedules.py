"""Scheduled runs: one job per integration and scheduled local time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import system_actor
from invoiceflow.core.db import utcnow
from invoiceflow.integrations.jobs.core import create_job
from invoiceflow.integrations.models import (
    Integration,
    IntegrationJob,
)

# --- schedules ---------------------------------------------------------------------------------------------

SCHEDULE_GRACE = timedelta(hours=1)


def last_fire_time(schedule: str, timezone: str, now: datetime) -> datetime:
    """The latest time at or before `now` that the cron `schedule` names, in `timezone` (aware)."""
    from croniter import croniter

    local_now = now.astimezone(ZoneInfo(timezone))
    fired: datetime = croniter(schedule, local_now + timedelta(microseconds=1)).get_prev(datetime)
    return fired


def schedule_trigger(fired: datetime) -> str:
    """A scheduled run's trigger: its local wall time, to the minute. Keyed on the local time, the 02:00 that the
    autumn clock change makes happen twice is one run."""
    return f"schedule:{fired.strftime('%Y-%m-%dT%H:%M')}"


async def create_scheduled_jobs(
    session: AsyncSession, now: datetime | None = None, *, grace: timedelta = SCHEDULE_GRACE
) -> list[IntegrationJob]:
    """Queue the scheduled run of every enabled integration whose cron time (in its time zone) passed within
    `grace`, once per scheduled time: safe to call as often as wanted, from several processes (a unique index
    on the trigger settles races). Flushes only; start the returned jobs in the same transaction. A scheduler
    that calls this every minute or so starts each run within that minute; one that was down for longer than
    `grace` skips what it missed rather than running a night's job at noon."""
    now = now or utcnow()
    created: list[IntegrationJob] = []
    integrations = (
        await session.execute(
            select(Integration).where(
                Integration.enabled.is_(True), Integration.deleted_at.is_(None), Integration.schedule.is_not(None)
            )
        )
    ).scalars()
    for integration in list(integrations):
        assert integration.schedule is not None
        fired = last_fire_time(integration.schedule, integration.timezone, now)
        if now - fired > grace or fired < integration.created_at:
            continue
        trigger = schedule_trigger(fired)
        taken = (
            await session.execute(
                select(IntegrationJob.id).where(
                    IntegrationJob.integration_id == integration.id,
                    IntegrationJob.job_type == "scheduled",
                    IntegrationJob.trigger == trigger,
                )
            )
        ).first()
        if taken is not None:
            continue
        try:
            async with session.begin_nested():
                job = await create_job(
                    session,
                    system_actor(integration.organization_id),
                    integration,
                    job_type="scheduled",
                    trigger=trigger,
                )
        except IntegrityError:  # another scheduler queued this run meanwhile
            continue
        created.append(job)
    return created
