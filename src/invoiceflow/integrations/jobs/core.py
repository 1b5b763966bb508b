"""What the job modules share: results, errors, short transactions, the run lock, and creating and starting a
job."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core import metrics
from invoiceflow.core.context import Actor
from invoiceflow.core.db import Database, utcnow
from invoiceflow.core.errors import Conflict
from invoiceflow.core.records import record_audit, record_event
from invoiceflow.integrations.connectors.base import (
    Destination,
    Source,
)
from invoiceflow.integrations.models import (
    FINAL_STATUSES,
    Integration,
    IntegrationJob,
)

log = logging.getLogger("invoiceflow.integrations")

LEASE = timedelta(minutes=10)
DEFAULT_CONCURRENCY = 4  # the connectors' own default (ConnectorOptions.max_concurrency)
ERROR_CHARS = 2000
ConnectorFactory = Callable[[Integration], tuple[Source, Destination]]


class IntegrationBusy(Conflict):
    """Another job of the same integration holds its run lock: wait and try again."""

    code = "INTEGRATION_BUSY"


class JobNotFound(LookupError):
    pass


class JobFinished(Conflict):
    """The job has ended already: there is nothing left to stop."""

    code = "JOB_FINISHED"


@dataclass(frozen=True, slots=True)
class PageResult:
    """What one page did. `more`: call `process_page` with the next page number. `replayed`: the page had
    been recorded before (a re-run), nothing was fetched or pushed."""

    page_no: int
    fetched: int = 0
    sent: int = 0
    duplicates: int = 0
    invalid: int = 0
    failed: int = 0
    changed: int = 0
    more: bool = False
    replayed: bool = False
    # The job was asked to stop (`cancel_requested_at`) before this page was begun: nothing of it was recorded
    # or pushed, and there is no next page.
    cancelled: bool = False
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobSummary:
    job_id: uuid.UUID
    status: str
    total: int
    processed: int
    failed: int
    duplicates: int
    invalid: int
    changed: int
    duration_seconds: float | None
    error: str | None


def summary_of(job: IntegrationJob) -> JobSummary:
    duration = None
    if job.started_at is not None and job.completed_at is not None:
        duration = (job.completed_at - job.started_at).total_seconds()
    return JobSummary(
        job.id,
        job.status,
        job.total,
        job.processed,
        job.failed,
        job.duplicates,
        job.invalid,
        job.changed,
        duration,
        job.error,
    )


# --- sessions ----------------------------------------------------------------------------------------------


@asynccontextmanager
async def write_session(db: Database) -> AsyncIterator[AsyncSession]:
    """One short write transaction, committed on success; on SQLite the process's write lock is held."""
    async with db.locked_write_session() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def load_job(session: AsyncSession, job_id: uuid.UUID) -> tuple[IntegrationJob, Integration]:
    job = await session.get(IntegrationJob, job_id, populate_existing=True)
    if job is None:
        raise JobNotFound(f"integration job {job_id} not found")
    integration = await session.get(Integration, job.integration_id, populate_existing=True)
    assert integration is not None  # a foreign key
    return job, integration


# --- creating ----------------------------------------------------------------------------------------------


async def create_job(
    session: AsyncSession,
    actor: Actor,
    integration: Integration,
    *,
    job_type: str = "manual",
    force_processing: bool = False,
    invoice_ids: Sequence[str] | None = None,
    trigger: str = "api",
) -> IntegrationJob:
    """A queued job, in the caller's transaction (flushed, not committed). Start it after the commit, or in
    the same transaction through a durable queue (`runtime.extras["job_launcher"]`)."""
    now = utcnow()
    job = IntegrationJob(
        id=uuid.uuid4(),
        organization_id=integration.organization_id,
        integration_id=integration.id,
        job_type=job_type,
        trigger=trigger[:100],
        status="queued",
        force_processing=force_processing,
        invoice_ids=list(dict.fromkeys(invoice_ids)) if invoice_ids is not None else None,
        requested_by_user_id=actor.user_id,
        pages_done=0,
        source_exhausted=False,
        total=0,
        processed=0,
        failed=0,
        duplicates=0,
        invalid=0,
        changed=0,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    record_audit(
        session,
        actor,
        action="integration.job.start",
        resource_type="integration_job",
        resource_id=job.id,
        details={
            "integration_id": str(integration.id),
            "job_type": job_type,
            "force_processing": force_processing,
            "invoice_ids": len(job.invoice_ids) if job.invoice_ids is not None else None,
        },
    )
    return job


# --- the run lock ------------------------------------------------------------------------------------------


async def hold_lock(session: AsyncSession, job_id: uuid.UUID, integration_id: uuid.UUID, **values: Any) -> bool:
    """Take or renew the run lock for the job (and set `values` on the integration); False when another job
    holds a lease that has not passed. The UPDATE row-locks the integration until the commit, so it comes
    first in a transaction: what is read after it cannot change under the transaction's feet."""
    now = utcnow()
    result = await session.execute(
        update(Integration)
        .where(
            Integration.id == integration_id,
            or_(
                Integration.active_job_id.is_(None),
                Integration.active_job_id == job_id,
                Integration.active_until < now,
            ),
        )
        .values(active_job_id=job_id, active_until=now + LEASE, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def release_lock(session: AsyncSession, job_id: uuid.UUID, integration_id: uuid.UUID) -> None:
    """Give the integration's run lock up, if this job holds it."""
    await session.execute(
        update(Integration)
        .where(Integration.id == integration_id, Integration.active_job_id == job_id)
        .values(active_job_id=None, active_until=None)
        .execution_options(synchronize_session=False)
    )


def busy(integration_id: uuid.UUID) -> IntegrationBusy:
    return IntegrationBusy(
        "Another job of this integration is running", details={"integration_id": str(integration_id)}
    )


async def start_job(db: Database, job_id: uuid.UUID) -> bool:
    """Take the integration's run lock for the job and mark it running (its cursor set on first start).

    True when the job holds the lock (again: safe to call twice), False when another job holds it or this
    job is finished already.
    """
    async with db.read_sessions() as session:
        job, _ = await load_job(session, job_id)
    if job.status in FINAL_STATUSES:
        return False
    async with write_session(db) as session:
        if not await hold_lock(session, job.id, job.integration_id):
            return False
        job, integration = await load_job(session, job_id)
        if job.status in FINAL_STATUSES:
            await session.rollback()
            return False
        now = utcnow()
        values: dict[str, Any] = {"status": "running", "updated_at": now}
        if job.started_at is None:
            values["started_at"] = now
            # Plain jobs continue from the integration; forced and filtered ones read the source from the start.
            plain = not job.force_processing and job.invoice_ids is None
            values["cursor"] = integration.cursor if plain else None
        # Guarded by the status: a queued job cancelled meanwhile (`cancel_job`) stays cancelled.
        started = await session.execute(
            update(IntegrationJob)
            .where(IntegrationJob.id == job.id, IntegrationJob.status.not_in(FINAL_STATUSES))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if started.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            return False
    return True


# --- cancelling --------------------------------------------------------------------------------------------


def job_event_payload(job: IntegrationJob) -> dict[str, Any]:
    """The payload of the events that end a job (`IntegrationJobCompleted`, `…Failed`, `…Cancelled`)."""
    return {
        "job_id": str(job.id),
        "integration_id": str(job.integration_id),
        "status": job.status,
        "total": job.total,
        "processed": job.processed,
        "failed": job.failed,
        "duplicates": job.duplicates,
        "invalid": job.invalid,
        "changed": job.changed,
        "error": job.error,
    }


def _finished(job: IntegrationJob) -> JobFinished:
    return JobFinished(
        f"The job has ended already ({job.status}): there is nothing to cancel",
        details={"job_id": str(job.id), "status": job.status},
    )


async def cancel_job(session: AsyncSession, actor: Actor, job: IntegrationJob) -> tuple[IntegrationJob, bool]:
    """Stop a job, in the caller's transaction (flushed, not committed). Returns the job and whether it is
    cancelled already (True: it was queued) or will stop at its next page boundary (False: it is running).

    A queued job has pushed nothing: it is cancelled at once (its runner then finds it finished). A running one
    is never flipped from here: a page between its two transactions would lose what the destination accepted.
    Only `cancel_requested_at` is set; the runner fetches no further page and `finish_job` ends the job as
    `cancelled`. Asking again changes nothing (the first request's time stays). Raises `JobFinished` for a
    finished job. Every write is guarded by the status, so a runner starting or finishing the job meanwhile
    wins and this answers what it found.
    """
    if job.status in FINAL_STATUSES:
        raise _finished(job)
    now = utcnow()
    cancelled = await session.execute(
        update(IntegrationJob)
        .where(IntegrationJob.id == job.id, IntegrationJob.status == "queued")
        .values(status="cancelled", cancel_requested_at=now, completed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if cancelled.rowcount == 1:  # type: ignore[attr-defined]
        # A queued job does not hold the run lock (start_job takes it and marks it running at once); release it
        # anyway should it ever do, so that the integration's next job is not kept waiting for a lease.
        await release_lock(session, job.id, job.integration_id)
        job = await _reload(session, job.id)
        record_event(
            session,
            organization_id=job.organization_id,
            type="IntegrationJobCancelled",
            resource_type="integration_job",
            resource_id=job.id,
            payload=job_event_payload(job),
        )
        _audit_cancel(session, actor, job, was="queued")
        await session.flush()
        metrics.integration_jobs_total.labels(trigger=job.job_type, status="cancelled").inc()
        return job, True
    requested = await session.execute(
        update(IntegrationJob)
        .where(
            IntegrationJob.id == job.id,
            IntegrationJob.status.not_in(FINAL_STATUSES),
            IntegrationJob.cancel_requested_at.is_(None),
        )
        .values(cancel_requested_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    job = await _reload(session, job.id)
    if job.status in FINAL_STATUSES:
        raise _finished(job)
    if requested.rowcount == 1:  # type: ignore[attr-defined]
        _audit_cancel(session, actor, job, was=job.status)
        await session.flush()
    return job, False


def _audit_cancel(session: AsyncSession, actor: Actor, job: IntegrationJob, *, was: str) -> None:
    details = {"integration_id": str(job.integration_id), "status": was}
    record_audit(
        session,
        actor,
        action="integration.job.cancel",
        resource_type="integration_job",
        resource_id=job.id,
        details=details,
    )


async def _reload(session: AsyncSession, job_id: uuid.UUID) -> IntegrationJob:
    job = await session.get(IntegrationJob, job_id, populate_existing=True)
    assert job is not None  # the caller loaded it in this transaction
    return job
