"""Imports every domain's models so the metadata is complete (migrations, tests, tools)."""

from __future__ import annotations


def load_all() -> None:
    import invoiceflow.auth.models
    import invoiceflow.clients.models
    import invoiceflow.core.models
    import invoiceflow.documents.models
    import invoiceflow.integrations.models
    import invoiceflow.invoices.models
    import invoiceflow.notifications.models
    import invoiceflow.orders.models
    import invoiceflow.webhooks.models
    import invoiceflow.workflows.models  # noqa: F401
