"""Workflows in the API process: always able to start and show them; in embedded mode, also running them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.runtime import ON_ISSUED, Runtime
from invoiceflow.core.storage import Storage
from invoiceflow.integrations.models import IntegrationJob
from invoiceflow.integrations.router import JOB_LAUNCHER
from invoiceflow.workflows import invoice
from invoiceflow.workflows.engine import Engine, enqueue_in_session
from invoiceflow.workflows.integration_jobs import launch_job
from invoiceflow.workflows.router import ENGINE
from invoiceflow.workflows.runner import Runner


async def attach_workflows(runtime: Runtime, storage: Storage) -> Callable[[], Awaitable[None]]:
    """Wire workflows into the app's runtime; the returned coroutine function stops them at shutdown."""
    settings = runtime.settings
    engine = Engine.create(settings, role="embedded" if settings.runs_workflows else "client")
    runtime.extras[ENGINE] = engine

    async def on_issued(session: AsyncSession, issued: Any) -> None:
        await enqueue_in_session(
            session,
            engine.client,
            workflow=invoice.WORKFLOW,
            workflow_id=invoice.workflow_id_for(issued.id),
            queue=invoice.QUEUE,
            args=(str(issued.organization_id), str(issued.id)),
        )

    runtime.extras[ON_ISSUED] = on_issued

    async def job_launcher(session: AsyncSession, job_id: uuid.UUID) -> None:
        job = await session.get(IntegrationJob, job_id)
        if job is None:  # pragma: no cover - the router created it in this transaction
            raise RuntimeError(f"integration job {job_id} vanished")
        await launch_job(session, engine.client, job.organization_id, job_id)

    runtime.extras[JOB_LAUNCHER] = job_launcher
    if not settings.runs_workflows:

        async def close_client() -> None:
            engine.shutdown()

        return close_client
    runner = Runner(settings, runtime.db, engine, storage=storage)
    await runner.start()
    runtime.extras["workflow_runner"] = runner
    return runner.stop
