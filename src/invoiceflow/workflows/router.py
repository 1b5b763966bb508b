"""Workflows as users see them: `GET /workflows/{id}`, `GET /invoices/{id}/workflow`, and a retry."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from invoiceflow.auth.deps import ActorDep, AdminDep
from invoiceflow.core.api import envelope
from invoiceflow.core.context import Actor
from invoiceflow.core.errors import Conflict, NotFound, ServiceUnavailable
from invoiceflow.core.runtime import Runtime, RuntimeDep, SessionDep, reads_only
from invoiceflow.invoices import service as invoices
from invoiceflow.workflows.engine import WORKFLOWS_VERSION, Engine
from invoiceflow.workflows.invoice import workflow_id_for
from invoiceflow.workflows.views import workflow_view

router = APIRouter(prefix="/api/v1", tags=["workflows"])
ENGINE = "workflows"  # runtime.extras key of the process's workflows.engine.Engine


def _engine(runtime: Runtime) -> Engine:
    engine = runtime.extras.get(ENGINE)
    if engine is None:
        raise ServiceUnavailable("Workflows are not configured in this process", code="WORKFLOWS_UNAVAILABLE")
    return engine  # type: ignore[no-any-return]


def _not_found(workflow_id: str) -> NotFound:
    return NotFound("Workflow not found", code="WORKFLOW_NOT_FOUND", details={"workflow_id": workflow_id})


async def _owned(engine: Engine, actor: Actor, workflow_id: str) -> Any:
    """The workflow's status row, if it exists and belongs to the actor's organisation (every workflow's
    first argument is its organisation id); another organisation's workflow is not found."""
    found = await engine.client.list_workflows_async(workflow_ids=[workflow_id], load_input=True, load_output=True)
    if not found:
        raise _not_found(workflow_id)
    status = found[0]
    inputs: dict[str, Any] = dict(status.input or {})
    args = inputs.get("args") or ()
    if not args or args[0] != str(actor.organization_id):
        raise _not_found(workflow_id)
    return status


async def _view(engine: Engine, actor: Actor, workflow_id: str) -> dict[str, Any]:
    status = await _owned(engine, actor, workflow_id)
    rows = await engine.client.list_workflow_steps_async(workflow_id, load_output=True)
    return workflow_view(status, rows)


def _first_failed_attempt(rows: list[Any]) -> int | None:
    """The first attempt of the failure that ended the workflow (earlier steps may have failed and then
    succeeded: they are not run again). `DBOS.sleep` rows between attempts neither start nor end a run."""
    start: int | None = None
    for row in sorted(rows, key=lambda r: r["function_id"]):
        if row["error"] is not None:
            start = row["function_id"] if start is None else start
        elif not row["function_name"].startswith("DBOS."):
            start = None
    return start


@router.get("/workflows/{workflow_id}")
async def get_workflow(workflow_id: str, actor: ActorDep, runtime: RuntimeDep) -> Response:
    """A workflow's status and each step with status, attempts, timings and last error."""
    return envelope(await _view(_engine(runtime), actor, workflow_id[:200]))


@router.get("/invoices/{invoice_id}/workflow", tags=["invoices"])
async def get_invoice_workflow(
    invoice_id: uuid.UUID, actor: ActorDep, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """The workflow that runs once the invoice is issued (validate, documents, email, publish)."""
    invoice = await invoices.get_invoice(session, actor, invoice_id)
    engine = _engine(runtime)
    workflow_id = workflow_id_for(invoice.id)
    try:
        return envelope(await _view(engine, actor, workflow_id))
    except NotFound:
        if invoice.status == "draft":
            return envelope({"workflow_id": workflow_id, "status": "not_started", "steps": []})
        raise


@router.post("/workflows/{workflow_id}/retry")
@reads_only  # the rewind is DBOS's own write; on SQLite a write session here would hold the file's lock
async def retry_workflow(workflow_id: str, actor: AdminDep, runtime: RuntimeDep) -> Response:
    """Run a failed workflow again from its first failed step; the steps that succeeded are kept."""
    engine = _engine(runtime)
    status = await _owned(engine, actor, workflow_id)
    if status.status not in ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", "CANCELLED"):
        raise Conflict(
            "Only a failed or cancelled workflow can be retried",
            code="WORKFLOW_NOT_FAILED",
            details={"status": status.status},
        )
    rows = await engine.client.list_workflow_steps_async(workflow_id, load_output=False)
    await engine.client.rewind_workflow_async(
        workflow_id,
        start_step=_first_failed_attempt(rows),
        application_version=WORKFLOWS_VERSION,
        queue_name=status.queue_name or "invoices",
    )
    return envelope(await _view(engine, actor, workflow_id), status_code=202)
