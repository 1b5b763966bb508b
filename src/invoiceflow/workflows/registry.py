"""Every workflow this application runs, imported before DBOS launches (recovery needs them registered)."""

from __future__ import annotations

from invoiceflow.workflows import integration_jobs, invoice, schedules, uploads

WORKFLOW_STEPS: dict[str, tuple[str, ...]] = {
    invoice.WORKFLOW: invoice.STEPS,
    uploads.WORKFLOW: uploads.STEPS,
    "overdue_sweep_workflow": ("overdue_sweep",),
    "reminders_workflow": ("reminders",),
    integration_jobs.WORKFLOW: integration_jobs.STEPS,
    "integration_schedule_workflow": ("queue_scheduled_jobs",),
}
__all__ = ["WORKFLOW_STEPS", "integration_jobs", "invoice", "schedules", "uploads"]
