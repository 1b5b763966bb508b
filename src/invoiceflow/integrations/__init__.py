"""Integrations: pull invoices from source systems and push them to destinations (issue 6)."""
