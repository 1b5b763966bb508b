"""Run Alembic migrations programmatically (used by the CLI, `make run` and the tests).

Several processes may upgrade the same fresh database at once (`serve` on several machines, or `serve`
next to `demo-data`). Each run is one transaction that first takes a database-wide lock, so the first
process migrates and the others wait, then find the schema at head and do nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, pool, text

from invoiceflow.core.db import sync_url

# The tables DBOS Transact keeps in our SQLite file (on PostgreSQL they live in schema `dbos`).
DBOS_SQLITE_TABLES = frozenset(
    {
        "workflow_status",
        "workflow_input",
        "workflow_output",
        "operation_outputs",
        "notifications",
        "workflow_events",
        "workflow_events_history",
        "streams",
        "workflow_schedules",
        "queues",
        "application_versions",
        "dbos_migrations",
        "datasource_outputs",
    }
)
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# pg_advisory_xact_lock key ("invoicef"); advisory locks are per database, so databases don't contend.
_PG_LOCK_KEY = 0x696E766F69636566
# The session-level lock around a whole PostgreSQL upgrade (ours, then DBOS's): "invoicew".
_PG_UPGRADE_KEY = 0x696E766F69636577


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Our schema (Alembic), then DBOS Transact's system tables, which live in the same database."""
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        _locked(database_url, lambda cfg: command.upgrade(cfg, revision))
        # SQLite: after our transaction, which holds the file's write lock.
        _migrate_workflow_tables(database_url)
        return

    # DBOS builds some indexes CONCURRENTLY, which waits for every older transaction: it must not run
    # inside our migration transaction, nor while other upgraders wait inside theirs. So PostgreSQL
    # upgraders first take a session-level lock by polling (a waiting try holds no transaction open).
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            while not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_UPGRADE_KEY}).scalar():
                time.sleep(0.2)
            try:
                _locked(database_url, lambda cfg: command.upgrade(cfg, revision))
                _migrate_workflow_tables(database_url)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_UPGRADE_KEY})
    finally:
        engine.dispose()


def _migrate_workflow_tables(database_url: str) -> None:
    from dbos import DBOS

    DBOS.migrate(sync_url(database_url))


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
