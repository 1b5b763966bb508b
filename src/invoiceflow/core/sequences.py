"""Gapless counters.

`next_value` is one upsert: on PostgreSQL it takes the counter row's lock, which is held until
COMMIT. Callers therefore allocate as late in the transaction as they can (ADR 0002), so the lock
covers as little work as possible. A rolled-back transaction releases its value, so no gap appears.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.numbering import format_number, period_for

_UPSERT = text(
    "INSERT INTO number_sequences (organization_id, series, period, last_value) "
    "VALUES (:org, :series, :period, 1) "
    "ON CONFLICT (organization_id, series, period) "
    "DO UPDATE SET last_value = number_sequences.last_value + 1 "
    "RETURNING last_value"
)


async def next_value(session: AsyncSession, organization_id: uuid.UUID, series: str, period: str) -> int:
    org = organization_id.hex if session.bind.dialect.name == "sqlite" else organization_id
    result = await session.execute(_UPSERT, {"org": org, "series": series, "period": period})
    return int(result.scalar_one())


async def next_free_number(
    session: AsyncSession,
    organization_id: uuid.UUID,
    series: str,
    pattern: str,
    on_date: date,
    is_taken: Callable[[str], Awaitable[bool]],
) -> str:
    """The next number of `pattern` that no document holds yet.

    A number can already be taken after a pattern change (a new counter regenerating issued numbers)
    or when one was typed in by hand: skip those instead of failing every later document.
    """
    period = period_for(pattern, on_date)
    while True:
        number = format_number(pattern, on_date, await next_value(session, organization_id, series, period))
        if not await is_taken(number):
            return number
