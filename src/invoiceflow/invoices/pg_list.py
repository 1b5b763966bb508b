"""The invoice list on PostgreSQL, rendered to JSON by the database.

A page of 50 summaries cost about 1 ms of Python to format (money quantized per currency, timestamps,
ids) and another millisecond to build and run the SQLAlchemy statement. Here PostgreSQL writes each
item's JSON text and the driver runs a prepared statement; Python only joins the items. The output is
the same text `service.summary_json` produces (the list tests run on both databases and compare it).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.context import Actor
from invoiceflow.core.db import driver_connection, utcnow
from invoiceflow.core.listing import decode_keyset, next_cursor
from invoiceflow.core.money import unusual_minor_units
from invoiceflow.invoices import transitions
from invoiceflow.invoices.models import Invoice
from invoiceflow.invoices.schemas import InvoiceFilters


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _places_case() -> str:
    whens = " ".join(f"WHEN {_sql_text(code)} THEN {places}" for code, places in unusual_minor_units().items())
    return f"CASE i.currency {whens} ELSE 2 END"


def _status_case(table: dict[str, tuple[str, ...]]) -> str:
    whens = " ".join(
        f"WHEN {_sql_text(status)} THEN CAST({_sql_text(orjson.dumps(list(nxt)).decode())} AS json)"
        for status, nxt in table.items()
    )
    return f"CASE i.status {whens} ELSE CAST('[]' AS json) END"


def _transitions_case() -> str:
    """`transitions.allowed(status, kind)`: one status table per kind, invoices' for an unknown kind."""
    kinds = " ".join(
        f"WHEN {_sql_text(kind)} THEN {_status_case(table)}"
        for kind, table in transitions.TABLES.items()
        if kind != "invoice"
    )
    return f"CASE i.kind {kinds} ELSE {_status_case(transitions.TRANSITIONS)} END"


_TS = '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\''
_ITEM = f"""json_build_object(
    'id', i.id::text,
    'kind', i.kind,
    'invoice_number', i.invoice_number,
    'credited_invoice_id', i.credited_invoice_id::text,
    'client_id', i.client_id::text,
    'order_id', i.order_id::text,
    'status', i.status,
    'issue_date', to_char(i.issue_date, 'YYYY-MM-DD'),
    'due_date', to_char(i.due_date, 'YYYY-MM-DD'),
    'currency', i.currency,
    'net_amount', round(i.net_amount, p.places)::text,
    'vat_amount', round(i.vat_amount, p.places)::text,
    'total_amount', round(i.total_amount, p.places)::text,
    'amount_paid', round(i.amount_paid, p.places)::text,
    'rounding_amount', round(i.rounding_amount, p.places)::text,
    'amount_due', round(i.total_amount - i.amount_paid + i.rounding_amount, p.places)::text,
    'buyer_reference', i.buyer_reference,
    'external_id', i.external_id,
    'allowed_transitions', {_transitions_case()},
    'created_at', to_char(i.created_at AT TIME ZONE 'UTC', {_TS}),
    'updated_at', to_char(i.updated_at AT TIME ZONE 'UTC', {_TS})
)::text"""
# round() on NUMERIC rounds half away from zero, which is ROUND_HALF_UP in Python's decimal module.
_FROM = f"FROM invoices i CROSS JOIN LATERAL (SELECT {_places_case()} AS places) p"
_SORT_TYPES: dict[str, type] = {
    "created_at": datetime,
    "issue_date": date,
    "due_date": date,
    "total_amount": Decimal,
    "invoice_number": str,
}


def _like(needle: str) -> str:
    """A LIKE pattern matching `needle` anywhere, with its own % and _ taken literally (ESCAPE '/')."""
    return "%" + needle.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def build_query(actor: Actor, f: InvoiceFilters) -> tuple[str, list[Any]]:
    """The page's SQL and its parameters. Only fixed fragments are concatenated; values are bound."""
    params: list[Any] = [actor.organization_id]
    where = ["i.organization_id = $1", "i.deleted_at IS NULL"]

    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if f.status:
        where.append(f"i.status = {bind(f.status)}")
    if f.kind:
        where.append(f"i.kind = {bind(f.kind)}")
    if f.client_id:
        where.append(f"i.client_id = {bind(f.client_id)}")
    if f.issue_date_from:
        where.append(f"i.issue_date >= {bind(f.issue_date_from)}")
    if f.issue_date_to:
        where.append(f"i.issue_date <= {bind(f.issue_date_to)}")
    if f.due_date_from:
        where.append(f"i.due_date >= {bind(f.due_date_from)}")
    if f.due_date_to:
        where.append(f"i.due_date <= {bind(f.due_date_to)}")
    if f.overdue is not None:
        # Only invoices fall overdue: a credit note is money the seller owes.
        late = f"i.kind = 'invoice' AND i.status = 'sent' AND i.due_date < {bind(utcnow().date())}"
        overdue = f"(i.status = 'overdue' OR ({late}))"
        where.append(overdue if f.overdue else f"NOT {overdue}")
    if f.min_amount is not None:
        where.append(f"i.total_amount >= {bind(f.min_amount)}")
    if f.max_amount is not None:
        where.append(f"i.total_amount <= {bind(f.max_amount)}")
    if f.currency:
        where.append(f"i.currency = {bind(f.currency)}")
    if f.q:
        like = bind(_like(f.q.lower()))
        # Only placeholders are interpolated into the text; the needle itself is bound.
        clients = f"SELECT c.id FROM clients c WHERE c.organization_id = $1 AND lower(c.name) LIKE {like} ESCAPE '/'"  # noqa: S608
        matches = [
            f"lower(i.{col}) LIKE {like} ESCAPE '/'" for col in ("invoice_number", "buyer_reference", "external_id")
        ]
        where.append(f"({' OR '.join(matches)} OR i.client_id IN ({clients}))")
    name = f.sort.lstrip("-")
    descending = f.sort.startswith("-")
    if f.cursor:
        # The column type bounds what a cursor may hold (digits, scale) before the driver sees it.
        sort_value, id_value = decode_keyset(f.cursor, _SORT_TYPES[name], getattr(Invoice, name).type)
        where.append(f"(i.{name}, i.id) {'<' if descending else '>'} ({bind(sort_value)}, {bind(id_value)})")
    direction = "DESC" if descending else "ASC"
    sql = (
        f"SELECT {_ITEM} AS item, i.{name} AS sort_value, i.id {_FROM} WHERE {' AND '.join(where)}"
        f" ORDER BY i.{name} {direction}, i.id {direction} LIMIT {bind(f.limit + 1)}"
    )
    return sql, params


async def invoice_page(session: AsyncSession, actor: Actor, f: InvoiceFilters) -> dict[str, Any]:
    """The list response's `data`: items as pre-rendered JSON, the next cursor and the limit."""
    sql, params = build_query(actor, f)
    conn = await driver_connection(session)
    records = await conn.fetch(sql, *params)
    name = f.sort.lstrip("-")
    rows = [_KeysetRow(r["item"], r["sort_value"], r["id"], name) for r in records]
    rows, cursor = next_cursor(rows, limit=f.limit, sort_attr=name)
    items = orjson.Fragment(("[" + ",".join(r.item for r in rows) + "]").encode())
    return {"items": items, "next_cursor": cursor, "limit": f.limit}


class _KeysetRow:
    """What `next_cursor` reads from the last row: its sort value under the sort's name, and its id."""

    def __init__(self, item: str, sort_value: Any, id_: Any, sort_attr: str) -> None:
        self.item = item
        self.id = id_
        setattr(self, sort_attr, sort_value)
