"""A workflow as users see it: its status and each planned step with status, attempts, timings and error.

Built from DBOS's own records (the workflow's status row and its step rows); there is no step table of
ours. A step that was retried has one row per attempt (retry.with_retries), with `DBOS.sleep` rows in
between.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dbos._sys_db import StepInfo, WorkflowStatus

from invoiceflow.workflows.registry import WORKFLOW_STEPS

_STATUS_WORDS = {
    "ENQUEUED": "queued",
    "DELAYED": "queued",
    "PENDING": "running",
    "SUCCESS": "succeeded",
    "ERROR": "failed",
    "CANCELLED": "cancelled",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "failed",
}


def _iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    return str(error)[:2000]


def _step_views(planned: tuple[str, ...], rows: list[StepInfo], workflow_status: str) -> list[dict[str, Any]]:
    by_name: dict[str, list[StepInfo]] = {}
    for row in rows:
        by_name.setdefault(row["function_name"], []).append(row)
    views: list[dict[str, Any]] = []
    reached_running = False
    for name in planned:
        attempts = by_name.get(name, [])
        view: dict[str, Any] = {
            "name": name,
            "status": "pending",
            "attempts": len(attempts),
            "started_at": None,
            "completed_at": None,
            "duration_ms": None,
            "error": None,
        }
        if attempts:
            first, last = attempts[0], attempts[-1]
            view["started_at"] = _iso(first["started_at_epoch_ms"])
            view["completed_at"] = _iso(last["completed_at_epoch_ms"])
            if first["started_at_epoch_ms"] is not None and last["completed_at_epoch_ms"] is not None:
                view["duration_ms"] = last["completed_at_epoch_ms"] - first["started_at_epoch_ms"]
            failed = last["error"] is not None
            view["error"] = _error_text(last["error"]) if failed else None
            if not failed:
                view["status"] = "succeeded"
            elif workflow_status in ("PENDING", "ENQUEUED"):
                view["status"] = "retrying"
                reached_running = True
            else:
                view["status"] = "failed"
        elif workflow_status == "PENDING" and not reached_running:
            view["status"] = "running"
            reached_running = True
        elif workflow_status == "SUCCESS":
            view["status"] = "skipped"
        views.append(view)
    return views


def workflow_view(status: WorkflowStatus, rows: list[StepInfo]) -> dict[str, Any]:
    planned = WORKFLOW_STEPS.get(status.name, tuple(dict.fromkeys(r["function_name"] for r in rows)))
    return {
        "workflow_id": status.workflow_id,
        "name": status.name,
        "status": _STATUS_WORDS.get(status.status, status.status.lower()),
        "queue": status.queue_name,
        "executor_id": status.executor_id,
        "app_version": status.app_version,
        "created_at": _iso(status.created_at),
        "updated_at": _iso(status.updated_at),
        "error": _error_text(status.error),
        "steps": _step_views(planned, [r for r in rows if r["function_name"] in planned], status.status),
    }
