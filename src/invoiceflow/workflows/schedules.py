"""Scheduled workflows (DBOS cron with a time zone): the overdue sweep and the payment reminders.

Every process that runs workflows applies the same schedules at launch (an idempotent upsert) and fires
them; a firing's workflow id is `sched-<name>-<time with offset>`, so two processes firing the same
moment start one workflow. What each job does is keyed on the *business date* of every organisation (its
own time zone) through `schedule_runs`: the autumn clock change, which makes 02:00 happen twice in
Brussels, or a firing replayed after an outage, never runs an organisation's day twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from croniter import croniter
from dbos import DBOS

from invoiceflow.invoices.overdue import run_overdue_sweep
from invoiceflow.notifications.reminders import run_reminders
from invoiceflow.workflows.deps import current
from invoiceflow.workflows.retry import RetryPolicy, durable_step, with_retries

SCHEDULE_ZONE: Final = "Europe/Brussels"
_POLICY: Final = RetryPolicy(attempts=5, first_delay=30)


@durable_step("overdue_sweep_workflow", "overdue_sweep")
async def overdue_sweep(scheduled_at: str) -> dict[str, Any]:
    return await run_overdue_sweep(current().db, now_utc=datetime.fromisoformat(scheduled_at))


@durable_step("reminders_workflow", "reminders")
async def reminders(scheduled_at: str) -> dict[str, Any]:
    deps = current()
    return await run_reminders(deps.db, deps.notifier, store=deps.store, now_utc=datetime.fromisoformat(scheduled_at))


@DBOS.workflow(name="overdue_sweep_workflow")
async def overdue_sweep_workflow(scheduled_at: datetime, _context: Any) -> dict[str, Any]:
    """Mark sent invoices past their due date as overdue (InvoiceStatusChanged), per organisation and day."""
    return await with_retries(overdue_sweep, _POLICY, scheduled_at.isoformat())


@DBOS.workflow(name="reminders_workflow")
async def reminders_workflow(scheduled_at: datetime, _context: Any) -> dict[str, Any]:
    """Send each organisation's due payment reminders (its reminder policy), each reminder once."""
    return await with_retries(reminders, _POLICY, scheduled_at.isoformat())


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    cron: str  # six fields: seconds first
    description: str
    workflow: Any

    def next_runs(self, after: datetime, count: int = 3) -> list[datetime]:
        it = croniter(self.cron, after.astimezone(ZoneInfo(SCHEDULE_ZONE)), second_at_beginning=True)
        return [it.get_next(datetime) for _ in range(count)]


SCHEDULES: Final = (
    Schedule("overdue-sweep", "0 5 0 * * *", "Mark sent invoices past due as overdue", overdue_sweep_workflow),
    Schedule("payment-reminders", "0 0 9 * * *", "Send the payment reminders that are due", reminders_workflow),
    # Each integration has its own cron and time zone (default 02:00 Europe/Brussels): this tick queues the
    # runs whose time has just passed, once per scheduled time.
    Schedule("integration-runs", "0 * * * * *", "Queue the scheduled integration runs that are due", None),
)


async def apply_schedules() -> None:
    from invoiceflow.workflows.integration_jobs import integration_schedule_workflow

    workflows: dict[str, Any] = {"integration-runs": integration_schedule_workflow}
    await DBOS.apply_schedules_async(
        [
            {
                "schedule_name": s.name,
                "workflow_fn": s.workflow or workflows[s.name],
                "schedule": s.cron,
                "cron_timezone": SCHEDULE_ZONE,
                # A firing missed while no process ran (a night's outage) runs when one starts again.
                "automatic_backfill": True,
            }
            for s in SCHEDULES
        ]
    )
