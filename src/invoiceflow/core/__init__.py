"""Shared infrastructure: settings, database, errors, money, envelope, events and audit rows.

Imports no domain package. Emits nothing by itself; domains call `record_event` / `record_audit`
inside their own transactions.
"""
