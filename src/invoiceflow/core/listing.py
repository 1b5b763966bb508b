"""Keyset pagination over (sort column, id), shared by every list endpoint."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from invoiceflow.core.errors import ValidationFailed
from invoiceflow.core.pagination import decode_cursor, encode_cursor


def _dump(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    return value


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed.field("cursor", "invalid cursor")


def _load(value: Any, sample_type: type, column_type: Any = None) -> Any:
    """A cursor value back in its column's type.

    Cursors come from clients and may be tampered with: anything `_dump` could not have produced, or the
    column could not hold (null, a naive timestamp, NaN, too many digits, NUL), is an invalid cursor rather
    than an error from the database driver.
    """
    if sample_type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_cursor()
        return value
    if not isinstance(value, str) or "\x00" in value:
        raise _invalid_cursor()
    try:
        if sample_type is datetime:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise _invalid_cursor()
            return moment
        if sample_type is date:
            return date.fromisoformat(value)
        if sample_type is Decimal:
            number = Decimal(value)
            if not number.is_finite():
                raise _invalid_cursor()
            scale = getattr(column_type, "scale", None)
            precision = getattr(column_type, "precision", None)
            if isinstance(scale, int) and number != number.quantize(Decimal(1).scaleb(-scale)):
                raise _invalid_cursor()
            if isinstance(precision, int) and len(number.as_tuple().digits) > precision:
                raise _invalid_cursor()
            return number
        if sample_type is uuid.UUID:
            return uuid.UUID(value)
        return sample_type(value)
    except (TypeError, ValueError, ArithmeticError):
        raise _invalid_cursor() from None


def decode_keyset(cursor: str, sort_type: type, column_type: Any = None) -> tuple[Any, uuid.UUID]:
    """The (sort value, id) a cursor continues after, checked as `_load` describes."""
    raw_sort, raw_id = decode_cursor(cursor, length=2)
    return _load(raw_sort, sort_type, column_type), _load(raw_id, uuid.UUID)


def paginate(
    stmt: Select[Any],
    *,
    sort_col: InstrumentedAttribute[Any],
    id_col: InstrumentedAttribute[Any],
    sort_type: type,
    descending: bool,
    cursor: str | None,
    limit: int,
) -> Select[Any]:
    """Order by (sort, id) and continue after the cursor. Fetch limit + 1 to know if more exist."""
    if cursor:
        sort_value, id_value = decode_keyset(cursor, sort_type, sort_col.type)
        if descending:
            stmt = stmt.where(or_(sort_col < sort_value, and_(sort_col == sort_value, id_col < id_value)))
        else:
            stmt = stmt.where(or_(sort_col > sort_value, and_(sort_col == sort_value, id_col > id_value)))
    order = (sort_col.desc(), id_col.desc()) if descending else (sort_col.asc(), id_col.asc())
    return stmt.order_by(*order).limit(limit + 1)


def next_cursor(rows: list[Any], *, limit: int, sort_attr: str) -> tuple[list[Any], str | None]:
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor([_dump(getattr(last, sort_attr)), str(last.id)])


async def page_by_created_at(
    session: AsyncSession, stmt: Select[Any], model: Any, *, cursor: str | None, limit: int, descending: bool = True
) -> tuple[list[Any], str | None]:
    """One page of `stmt`'s `model` rows in (created_at, id) order, newest first unless `descending` is
    False, and the cursor of the next page (None on the last)."""
    stmt = paginate(
        stmt,
        sort_col=model.created_at,
        id_col=model.id,
        sort_type=datetime,
        descending=descending,
        cursor=cursor,
        limit=limit,
    )
    rows = list((await session.execute(stmt)).scalars())
    return next_cursor(rows, limit=limit, sort_attr="created_at")
