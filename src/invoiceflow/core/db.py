"""Engines, sessions and column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, MetaData, Numeric, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


_NO_OFFSET = timedelta(0)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp; SQLite has no time zones, so values are stored and read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # asyncpg already returns UTC; converting is needed only for other offsets.
        return value if value.utcoffset() == _NO_OFFSET else value.astimezone(UTC)


class Amount(TypeDecorator[Decimal]):
    """An exact decimal.

    PostgreSQL stores NUMERIC. SQLite has no exact decimal type (NUMERIC there is a float), so the
    value is stored as a scaled 64-bit integer: exact, and ordered correctly for range filters.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, scale: int = 4, precision: int = 20) -> None:
        super().__init__()
        self.scale = scale
        self.precision = precision
        self._factor = Decimal(10) ** scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("floats are not accepted for money columns")
        dec = Decimal(value)
        if dec != dec.quantize(self._quantum):
            raise ValueError(f"{dec} has more than {self.scale} decimal places")
        if dialect.name == "sqlite":
            return int(dec * self._factor)
        return dec

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            # Exact: an integer scaled by a power of ten is a Decimal with that exponent.
            return Decimal(int(value)).scaleb(-self.scale)
        return value if type(value) is Decimal else Decimal(value)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def async_url(url: str) -> str:
    """Map a plain URL (what users write) to the async driver the application uses."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    return url


def sync_url(url: str) -> str:
    """Map a plain URL to the synchronous driver used by migrations and tools."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+asyncpg://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite+aiosqlite:///"):
        return "sqlite:///" + url.removeprefix("sqlite+aiosqlite:///")
    return url


def configure_sqlite(engine: Any, *, immediate: bool) -> None:
    """WAL, foreign keys and a busy timeout on every SQLite connection.

    Write transactions start with BEGIN IMMEDIATE: a deferred transaction that reads and then writes
    fails with SQLITE_BUSY instead of waiting when another writer committed in between.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """The application's engines: one for reads and one for writes (the same engine on PostgreSQL)."""

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine: AsyncEngine = create_async_engine(async_url(url), echo=echo)
            self.read_engine: AsyncEngine = create_async_engine(async_url(url), echo=echo)
            configure_sqlite(self.write_engine.sync_engine, immediate=True)
            configure_sqlite(self.read_engine.sync_engine, immediate=False)
        else:
            self.write_engine = create_async_engine(
                async_url(url),
                echo=echo,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_pre_ping=False,
            )
            # Reads run in autocommit: no BEGIN/ROLLBACK round trips around a request that only reads.
            # The pool is shared; SQLAlchemy resets the isolation level when a connection is returned.
            self.read_engine = self.write_engine.execution_options(isolation_level="AUTOCOMMIT")
        # SQLite allows one writer. Queueing writers here (FIFO, no polling) beats SQLite's busy
        # handler, which sleeps up to 100 ms between tries while the lock may already be free.
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None
        self.write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False, autoflush=False)

    @asynccontextmanager
    async def locked_write_session(self) -> AsyncIterator[AsyncSession]:
        """A write session of its own, outside any request; on SQLite the process's write lock is held for
        its lifetime, so it queues behind the process's other writers instead of SQLite's busy handler."""
        if self.write_lock is None:
            async with self.write_sessions() as session:
                yield session
            return
        async with self.write_lock, self.write_sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.is_sqlite:
            await self.read_engine.dispose()


async def driver_connection(session: AsyncSession, *, begin: bool = True) -> Any:
    """The asyncpg connection under `session`, with the session's transaction begun on it.

    Hot paths on PostgreSQL run prepared statements on the driver directly: SQLAlchemy's execution
    layer costs about 0.2 ms of CPU per statement, three times the driver's own work. The statements
    run inside the session's transaction: SQLAlchemy's asyncpg adapter starts its transaction lazily,
    on the first statement it executes itself, so it is started here (the adapter's `_start_transaction`
    is a no-op on autocommit connections, which the read engine uses). Commit and rollback stay with the
    session. With `begin=False` no transaction is started: each statement commits on its own (for a
    read after the session committed). Only for PostgreSQL sessions.
    """
    transaction = session.get_transaction()
    held = session.info.get("driver_connection")
    if held is not None and held[0] is transaction and transaction is not None and (held[2] or not begin):
        return held[1]
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    adapted = raw.dbapi_connection
    if adapted is None:  # pragma: no cover - a checked-out connection always has one
        raise RuntimeError("the session's connection is closed")
    if begin and not adapted._started:
        await adapted._start_transaction()
    # Remembered for this session transaction only: after it ends the connection goes back to the pool.
    session.info["driver_connection"] = (session.get_transaction(), raw.driver_connection, begin)
    return raw.driver_connection
