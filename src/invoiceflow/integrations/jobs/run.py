"""Finishing a job (status, lock, metrics, event, Slack) and running a whole job in this process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from invoiceflow.core import metrics
from invoiceflow.core.db import Database, utcnow
from invoiceflow.core.errors import AppError
from invoiceflow.core.records import record_event
from invoiceflow.core.settings import Settings
from invoiceflow.integrations.jobs.connections import close_connectors
from invoiceflow.integrations.jobs.core import (
    ERROR_CHARS,
    ConnectorFactory,
    IntegrationBusy,
    JobSummary,
    PageResult,
    busy,
    job_event_payload,
    load_job,
    log,
    release_lock,
    start_job,
    summary_of,
    write_session,
)
from invoiceflow.integrations.jobs.pages import process_page
from invoiceflow.integrations.models import (
    FINAL_STATUSES,
    IntegrationJob,
)

# --- finishing ---------------------------------------------------------------------------------------------

_EVENTS = {"failed": "IntegrationJobFailed", "cancelled": "IntegrationJobCancelled"}


def _final_status(job: IntegrationJob) -> str:
    if job.error is not None:
        return "failed"
    # Asked to stop and stopped before the end of its source: what it recorded stays (items, ledger, counters).
    # A request that came after the last page was recorded changed nothing: the job completed.
    if job.cancel_requested_at is not None and not job.source_exhausted:
        return "cancelled"
    if job.failed or job.invalid or job.changed:
        return "completed_with_errors"
    return "completed"


async def finish_job(
    db: Database,
    job_id: uuid.UUID,
    *,
    settings: Settings,
    error: str | None = None,
    notifier: Any = None,
) -> JobSummary:
    """End the job: final status from its counters (`failed` when it has an error, `cancelled` when it stopped
    early because a user asked it to), completion time, the run lock released, connectors closed; then
    metrics, an event, and Slack (on failure; for any other outcome, cancelled too, when the integration asks
    for it). A finished job is left as it is and nothing is sent again: safe to call twice.

    `notifier`: a `notifications.service.Notifier`; by default one from the settings (Slack only when
    INVOICEFLOW_SLACK_WEBHOOK_URL is set).
    """
    await close_connectors(job_id)
    async with write_session(db) as session:
        job, integration = await load_job(session, job_id)
        if job.status in FINAL_STATUSES:
            return summary_of(job)
        now = utcnow()
        if error is not None:
            job.error = error[:ERROR_CHARS]
        job.status = _final_status(job)
        job.started_at = job.started_at or now
        job.completed_at = job.updated_at = now
        await release_lock(session, job.id, integration.id)
        record_event(
            session,
            organization_id=job.organization_id,
            type=_EVENTS.get(job.status, "IntegrationJobCompleted"),
            resource_type="integration_job",
            resource_id=job.id,
            payload=job_event_payload(job),
        )
        summary = summary_of(job)
        notify_success = integration.notify_on_success
        integration_name = integration.name
        organization_id = job.organization_id
        job_type = job.job_type
    metrics.integration_jobs_total.labels(trigger=job_type, status=summary.status).inc()
    if summary.duration_seconds is not None:
        metrics.integration_job_duration_seconds.observe(summary.duration_seconds)
    if summary.status == "failed" or notify_success:
        await _notify(db, settings, notifier, organization_id, integration_name, summary)
    return summary


async def _notify(
    db: Database, settings: Settings, notifier: Any, organization_id: uuid.UUID, name: str, summary: JobSummary
) -> None:
    from invoiceflow.notifications.service import job_failed_slack, notifier_for, send_slack
    from invoiceflow.notifications.transport import slack_escape

    notifier = notifier or notifier_for(settings, db)
    results = (
        f"{summary.total} invoices: {summary.processed} sent, {summary.duplicates} duplicates, "
        f"{summary.invalid} invalid, {summary.changed} changed, {summary.failed} failed"
    )
    details_url = f"{settings.public_base_url.rstrip('/')}/api/v1/jobs/{summary.job_id}"
    try:
        if summary.status == "failed":
            await job_failed_slack(
                notifier,
                organization_id=organization_id,
                job_id=summary.job_id,
                job_type=f"integration {name}",
                error=f"{summary.error}\n{results}",
                details_url=details_url,
            )
        else:
            icon = {"completed": ":white_check_mark:", "cancelled": ":no_entry_sign:"}.get(summary.status, ":warning:")
            text = (
                f"{icon} integration *{slack_escape(name)}* job `{summary.job_id}` {summary.status}: "
                f"{slack_escape(results)}\n<{slack_escape(details_url)}|Open the job>"
            )
            await send_slack(
                notifier,
                organization_id=organization_id,
                purpose="job_completed",
                dedupe_key=f"job_completed:{summary.job_id}",
                text=text,
                resource_type="job",
                resource_id=summary.job_id,
            )
    except Exception:  # noqa: BLE001 - a lost alert must not change the job's outcome; it is logged
        log.warning("Slack summary of job %s not sent", summary.job_id, exc_info=True)


# --- the whole job, in-process -----------------------------------------------------------------------------


async def run_job(
    db: Database,
    job_id: uuid.UUID,
    *,
    settings: Settings,
    connectors: ConnectorFactory | None = None,
    notifier: Any = None,
    progress: Callable[[PageResult], None] | None = None,
    wait_seconds: float = 3600.0,
    poll_seconds: float = 1.0,
) -> JobSummary:
    """Run (or resume) the job to its end in this process and return how it ended. Re-runnable: a finished
    job is returned as it is; an interrupted one continues from its first unrecorded page.

    Waits up to `wait_seconds` for the integration's run lock while another job of it runs.
    """
    waited = 0.0
    try:
        while not await start_job(db, job_id):
            async with db.read_sessions() as session:
                job, _ = await load_job(session, job_id)
            if job.status in FINAL_STATUSES:
                return summary_of(job)
            if waited >= wait_seconds:
                raise busy(job.integration_id)
            await asyncio.sleep(poll_seconds)
            waited += poll_seconds
        async with db.read_sessions() as session:
            job, _ = await load_job(session, job_id)
        page_no = job.pages_done
        while True:
            try:
                result = await process_page(db, job_id, page_no, settings=settings, connectors=connectors)
            except IntegrationBusy:
                # Our lease passed and another job took the lock: wait for it, then continue.
                while not await start_job(db, job_id):
                    if waited >= wait_seconds:
                        raise
                    await asyncio.sleep(poll_seconds)
                    waited += poll_seconds
                continue
            if progress is not None:
                progress(result)
            if not result.more:
                break
            page_no += 1
    except asyncio.CancelledError:
        await close_connectors(job_id)
        raise
    except Exception as exc:  # noqa: BLE001 - every failure ends the job, with its reason recorded
        log.warning("integration job %s failed", job_id, exc_info=True)
        message = exc.message if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
        return await finish_job(db, job_id, settings=settings, error=message, notifier=notifier)
    return await finish_job(db, job_id, settings=settings, notifier=notifier)
