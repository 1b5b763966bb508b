"""Read side of the event log and the audit log (both written by core.records in every domain)."""
