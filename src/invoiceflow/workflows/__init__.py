"""Durable workflows (DBOS Transact): the invoice journey, seed uploads, event delivery and schedules."""
