from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep, AdminDep
from invoiceflow.core import idempotency
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.runtime import Runtime, RuntimeDep, SessionDep, after_commit
from invoiceflow.integrations import jobs, service
from invoiceflow.integrations.schemas import (
    IntegrationCreate,
    IntegrationFilters,
    IntegrationPage,
    IntegrationRead,
    IntegrationUpdate,
    JobFilters,
    JobItemFilters,
    JobItemPage,
    JobItemRead,
    JobPage,
    JobRead,
    JobStarted,
    ProcessQuery,
    ProcessRequest,
)

# `runtime.extras` key of the durable starter of a job: `async (session, job_id) -> None`, run in the
# transaction that creates the job (a DBOS enqueue). Unset: the job runs in this process after the commit.
JOB_LAUNCHER = "job_launcher"

router = APIRouter(prefix="/api/v1", tags=["integrations"])
IdemKey = Annotated[str | None, idempotency.HEADER]


@router.post("/integrations", status_code=201, response_model=Envelope[IntegrationRead])
async def create_integration(
    data: IntegrationCreate,
    actor: AdminDep,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    key: IdemKey = None,
) -> Response:
    """Admins only. Header values and secret keys are stored encrypted and answered masked, here too."""
    # The fingerprint names the body's shape, never its secrets in clear.
    record = await idempotency.begin(
        session, actor.organization_id, key, request.url.path, {"sha256": _body_digest(data)}
    )
    integration = await service.create_integration(session, actor, data, settings=runtime.settings)
    out = service.to_read(integration).model_dump(mode="json")
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


def _body_digest(data: IntegrationCreate) -> str:
    import hashlib

    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()


@router.get("/integrations", response_model=Envelope[IntegrationPage])
async def list_integrations(
    actor: ActorDep, session: SessionDep, filters: Annotated[IntegrationFilters, Query()]
) -> Response:
    rows, cursor = await service.list_integrations(session, actor, filters)
    return envelope(IntegrationPage(items=[service.to_read(r) for r in rows], next_cursor=cursor, limit=filters.limit))


@router.get("/integrations/{integration_id}", response_model=Envelope[IntegrationRead])
async def get_integration(integration_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    return envelope(service.to_read(await service.get_integration(session, actor, integration_id)))


@router.patch("/integrations/{integration_id}", response_model=Envelope[IntegrationRead])
async def update_integration(
    integration_id: uuid.UUID, data: IntegrationUpdate, actor: AdminDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Admins only. A connector given replaces the stored one; masked values sent back keep their secret."""
    integration = await service.update_integration(session, actor, integration_id, data, settings=runtime.settings)
    return envelope(service.to_read(integration))


@router.delete("/integrations/{integration_id}", response_model=Envelope[IntegrationRead])
async def delete_integration(integration_id: uuid.UUID, actor: AdminDep, session: SessionDep) -> Response:
    """Admins only. Soft delete: no more runs, the job history stays."""
    return envelope(service.to_read(await service.delete_integration(session, actor, integration_id)))


@router.post("/invoices/process", status_code=202, response_model=Envelope[JobStarted], tags=["jobs"])
async def process_invoices(
    data: ProcessRequest,
    query: Annotated[ProcessQuery, Query()],
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    request: Request,
    key: IdemKey = None,
) -> Response:
    """Start a manual integration run for `?integration_id=` (else the default integration): fetch, validate,
    deduplicate, push. Answers at once with the queued job; follow it at `/jobs/{job_id}`.

    `force_processing` re-sends invoices the destination already has; `invoice_ids` limits the run to those
    source documents. Several runs of one integration never run at the same time: a second waits.
    """
    body = {"integration_id": str(query.integration_id) if query.integration_id else None, **data.model_dump()}
    record = await idempotency.begin(session, actor.organization_id, key, request.url.path, body)
    integration = await service.integration_for_run(session, actor, query.integration_id)
    job = await jobs.create_job(
        session,
        actor,
        integration,
        job_type="manual",
        force_processing=data.force_processing,
        invoice_ids=data.invoice_ids,
        trigger="api",
    )
    await _launch(session, runtime, job.id)
    started = JobStarted(
        **service.job_read(job).model_dump(),
        estimated_completion_at=await service.estimated_completion(session, integration.id),
    )
    out = started.model_dump(mode="json")
    idempotency.complete(record, 202, out)
    return envelope(out, status_code=202)


async def _launch(session: SessionDep, runtime: Runtime, job_id: uuid.UUID) -> None:
    launcher = runtime.extras.get(JOB_LAUNCHER)
    if launcher is not None:
        await launcher(session, job_id)
        return

    async def run() -> None:
        await jobs.run_job(runtime.db, job_id, settings=runtime.settings)

    after_commit(session, run)


@router.get("/jobs", response_model=Envelope[JobPage], tags=["jobs"])
async def list_jobs(actor: ActorDep, session: SessionDep, filters: Annotated[JobFilters, Query()]) -> Response:
    rows, cursor = await service.list_jobs(session, actor, filters)
    return envelope(JobPage(items=[service.job_read(r) for r in rows], next_cursor=cursor, limit=filters.limit))


@router.get("/jobs/{job_id}", response_model=Envelope[JobRead], tags=["jobs"])
async def get_job(job_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> Response:
    """The job with its results and the first 100 per-invoice errors (all items: `/jobs/{job_id}/items`)."""
    job = await service.get_job(session, actor, job_id)
    return envelope(service.job_read(job, await service.job_errors(session, job.id)))


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=202,
    response_model=Envelope[JobRead],
    responses={200: {"description": "The job was queued: it is cancelled now", "model": Envelope[JobRead]}},
    tags=["jobs"],
)
async def cancel_job(
    job_id: uuid.UUID, actor: ActorDep, session: SessionDep, request: Request, key: IdemKey = None
) -> Response:
    """Stop a job, keeping everything it recorded. Members may cancel, as they may start runs.

    * queued (not started): cancelled now → **200**, status `cancelled`; it pushes nothing.
    * running: the stop is requested → **202**, `cancel_requested_at` set, status still `running`. The page
      being pushed is finished and recorded (every invoice the destination accepted is in the job's items and
      the dedupe ledger); no further page is fetched, and the job ends `cancelled` (follow it at
      `/jobs/{job_id}`). A request that arrives after its last page leaves it `completed`. Asking again answers
      202 with the first request's time.
    * finished (`completed`, `completed_with_errors`, `failed`, `cancelled`): **409** `JOB_FINISHED`, with the
      status in `details`; nothing changes.
    """
    record = await idempotency.begin(session, actor.organization_id, key, request.url.path, {})
    job = await service.get_job(session, actor, job_id)
    job, cancelled_now = await jobs.cancel_job(session, actor, job)
    status_code = 200 if cancelled_now else 202
    out = service.job_read(job, await service.job_errors(session, job.id)).model_dump(mode="json")
    idempotency.complete(record, status_code, out)
    return envelope(out, status_code=status_code)


@router.get("/jobs/{job_id}/items", response_model=Envelope[JobItemPage], tags=["jobs"])
async def list_job_items(
    job_id: uuid.UUID, actor: ActorDep, session: SessionDep, filters: Annotated[JobItemFilters, Query()]
) -> Response:
    """Every source document of the job: its outcome, failing rule ids, and the destination's answer."""
    rows, cursor = await service.list_job_items(session, actor, job_id, filters)
    return envelope(
        JobItemPage(items=[JobItemRead.model_validate(r) for r in rows], next_cursor=cursor, limit=filters.limit)
    )
