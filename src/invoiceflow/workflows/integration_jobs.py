"""Integration jobs as durable workflows: start (the integration's run lock) → one step per page → finish.

`integrations.jobs` does the work; every call is safe to run again (pages are recorded once, pushes carry
Idempotency-Keys derived from the invoice), so a crash anywhere resumes at the interrupted page without
sending any invoice twice. The daily runs come from a one-minute tick that queues the jobs whose cron time
(in their own time zone) has just passed, once per scheduled time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from dbos import DBOS
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.failpoints import failpoint
from invoiceflow.integrations import jobs
from invoiceflow.integrations.jobs.core import load_job
from invoiceflow.integrations.models import FINAL_STATUSES, IntegrationJob
from invoiceflow.workflows.deps import current
from invoiceflow.workflows.engine import enqueue_in_session
from invoiceflow.workflows.retry import RetryPolicy, StepFailed, durable_step, with_retries

WORKFLOW: Final = "integration_job_workflow"
QUEUE: Final = "integrations"
STEPS: Final = ("job_start", "job_page", "job_finish")
# Another job of the integration may hold the run lock for a while (a long nightly run): wait up to ~2 h.
_START: Final = RetryPolicy(attempts=40, first_delay=5, max_delay=300)
_PAGE: Final = RetryPolicy(attempts=5, first_delay=5, max_delay=120)
_FINISH: Final = RetryPolicy(attempts=10, first_delay=2, max_delay=60)


def workflow_id_for(job_id: uuid.UUID | str) -> str:
    return f"integration-job-{job_id}"


async def launch_job(session: AsyncSession, client: Any, organization_id: uuid.UUID, job_id: uuid.UUID) -> str:
    """Queue the job's workflow in the caller's transaction and note its id on the job."""
    workflow_id = workflow_id_for(job_id)
    await enqueue_in_session(
        session,
        client,
        workflow=WORKFLOW,
        workflow_id=workflow_id,
        queue=QUEUE,
        args=(str(organization_id), str(job_id)),
    )
    job = await session.get(IntegrationJob, job_id)
    if job is None:  # pragma: no cover - the caller created it in this transaction
        raise RuntimeError(f"integration job {job_id} vanished")
    job.workflow_id = workflow_id  # on the loaded object too: the caller's response shows it
    return workflow_id


@durable_step(WORKFLOW, "job_start")
async def job_start(organization_id: str, job_id: str) -> dict[str, Any]:
    db = current().db
    started = await jobs.start_job(db, uuid.UUID(job_id))
    async with db.read_sessions() as session:
        job, _integration = await load_job(session, uuid.UUID(job_id))
    if job.status in FINAL_STATUSES:
        return {"finished": True, "page_no": job.pages_done}
    if not started:
        raise StepFailed("INTEGRATION_BUSY", "Another job of this integration is running; waiting for it")
    return {"finished": False, "page_no": job.pages_done}


@durable_step(WORKFLOW, "job_page")
async def job_page(organization_id: str, job_id: str, page_no: int) -> dict[str, Any]:
    deps = current()
    try:
        result = await jobs.process_page(deps.db, uuid.UUID(job_id), page_no, settings=deps.settings)
    except jobs.IntegrationBusy:
        await jobs.start_job(deps.db, uuid.UUID(job_id))  # take the lock back if it is free, then try again
        raise
    failpoint("integration.page")  # the page is recorded and pushed; DBOS has not recorded the step
    # `more` is False once the job was asked to stop (`cancelled`): the workflow goes on to job_finish.
    return {
        "more": result.more,
        "sent": result.sent,
        "fetched": result.fetched,
        "error": result.error,
        "cancelled": result.cancelled,
    }


@durable_step(WORKFLOW, "job_finish")
async def job_finish(organization_id: str, job_id: str, error: str) -> dict[str, Any]:
    deps = current()
    summary = await jobs.finish_job(
        deps.db, uuid.UUID(job_id), settings=deps.settings, error=error or None, notifier=deps.notifier
    )
    return {"status": summary.status}


@DBOS.workflow(name=WORKFLOW)
async def integration_job_workflow(organization_id: str, job_id: str) -> dict[str, Any]:
    begun = await with_retries(job_start, _START, organization_id, job_id)
    if begun["finished"]:
        return {"status": "already finished"}
    page_no = begun["page_no"]
    error = ""
    try:
        while True:
            page = await with_retries(job_page, _PAGE, organization_id, job_id, page_no)
            if not page["more"]:
                break
            page_no += 1
    except StepFailed as exc:
        error = exc.message
    return await with_retries(job_finish, _FINISH, organization_id, job_id, error)


@durable_step("integration_schedule_workflow", "queue_scheduled_jobs")
async def queue_scheduled_jobs(scheduled_at: str) -> list[str]:
    deps = current()
    async with deps.db.write_sessions() as session:
        created = await jobs.create_scheduled_jobs(session, datetime.fromisoformat(scheduled_at))
        for job in created:
            await launch_job(session, deps.client, job.organization_id, job.id)
        await session.commit()
    return [str(job.id) for job in created]


@DBOS.workflow(name="integration_schedule_workflow")
async def integration_schedule_workflow(scheduled_at: datetime, _context: Any) -> list[str]:
    """Every minute: queue the integration runs whose schedule time just passed (02:00 Europe/Brussels by
    default), each once per scheduled time however often this fires."""
    return await with_retries(queue_scheduled_jobs, _FINISH, scheduled_at.isoformat())
