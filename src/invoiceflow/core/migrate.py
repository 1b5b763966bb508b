"""Run Alembic migrations programmatically (used by the CLI, `make run` and the tests).

Several processes may upgrade the same fresh database at once (`serve` on several machines, or `serve`
next to `demo-data`). Each run is one transaction that first takes a database-wide lock, so the first
process migrates and the others wait, then find the schema at head and do nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, pool, text

from invoiceflow.core.db import sync_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# pg_advisory_xact_lock key ("invoicef"); advisory locks are per database, so databases don't contend.
_PG_LOCK_KEY = 0x696E766F69636566


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _locked(database_url, lambda cfg: command.upgrade(cfg, revision))


def downgrade(database_url: str, revision: str) -> None:
    _locked(database_url, lambda cfg: command.downgrade(cfg, revision))


def _locked(database_url: str, action: Callable[[Config], None]) -> None:
    cfg = alembic_config(database_url)
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        _begin_immediate(engine)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            # env.py runs the migrations on this connection, inside this transaction.
            cfg.attributes["connection"] = conn
            action(cfg)
    finally:
        engine.dispose()


def _begin_immediate(engine: Any) -> None:
    """SQLite: take the write lock when the transaction starts, so a second migrator waits for the first."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout=60000")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
