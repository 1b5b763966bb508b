"""Gapless counters.

`next_value` is one upsert: on PostgreSQL it takes the counter row's lock, which is held until
COMMIT. Callers therefore allocate as late in the transaction as they can (ADR 0002), so the lock
covers as little work as possible. A rolled-back transaction releases its value, so no gap appears.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
