"""DBOS Transact wiring: configuration, launch and shutdown, atomic starts, and the client (ADR 0008).

DBOS keeps its system tables in our own database (PostgreSQL schema `dbos`, or the same SQLite file), so
an invoice and the start of its workflow commit together. A process either *runs* workflows (embedded
`serve`, `worker`), which launches DBOS, or only *starts and shows* them (scale-out `serve`), which uses a
`DBOSClient` and never executes workflow code.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, DBOSConfig, EnqueueOptions
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.db import sync_url
from invoiceflow.core.settings import Settings

log = logging.getLogger("invoiceflow.workflows")

APP_NAME: Final = "invoiceflow"
# Bumped whenever a workflow's steps are added, removed or reordered: a process only dequeues and
# recovers workflows of its own version, so old workers drain what they started before they stop.
WORKFLOWS_VERSION: Final = "2026.11.2"

Role = Literal["embedded", "worker", "client"]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    worker_concurrency: int | None
    polling_interval_sec: float


def queue_specs(settings: Settings) -> tuple[QueueSpec, ...]:
    return (
        # A short polling interval: each poll starts at most `worker_concurrency` new workflows.
        QueueSpec("invoices", settings.workflow_concurrency, 0.05),
        QueueSpec("documents", 4, 0.2),
        QueueSpec("integrations", 2, 0.5),
    )


def system_database_url(database_url: str) -> str:
    """The URL DBOS is given for our database (synchronous driver: DBOS runs its SQL in threads)."""
    return sync_url(database_url)


def sqlite_system_engine(database_url: str) -> sa.Engine:
    """DBOS's engine on our SQLite file: WAL, NORMAL sync, write transactions that take the lock at BEGIN,
    and a single connection (a Python queue instead of SQLite's sleeping busy handler)."""
    engine = sa.create_engine(system_database_url(database_url), pool_size=1, max_overflow=0, pool_timeout=120)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def default_executor_id(role: Role) -> str:
    return f"{socket.gethostname()}-{role}"


def make_client(settings: Settings, engine: sa.Engine | None = None) -> DBOSClient:
    """A client for starting, listing and retrying workflows from any process (it runs none)."""
    if settings.is_sqlite:
        return DBOSClient(
            system_database_engine=engine or sqlite_system_engine(settings.effective_database_url),
            application_name=APP_NAME,
            # Connect now, outside any transaction: a first use inside a request would wait on its own SQLite lock.
            lazy=False,
        )
    return DBOSClient(
        system_database_url=system_database_url(settings.effective_database_url),
        application_name=APP_NAME,
        system_database_pool_size=4,
        lazy=True,
    )


def dbos_config(settings: Settings, *, executor_id: str, engine: sa.Engine | None) -> DBOSConfig:
    config: DBOSConfig = {
        "name": APP_NAME,
        "system_database_url": system_database_url(settings.effective_database_url),
        "application_version": WORKFLOWS_VERSION,
        "executor_id": executor_id,
        "run_migrations": False,
        "log_level": "WARNING",
        "sys_db_pool_size": 10,
        # Schedules are applied at launch; a shorter poll only matters for schedules changed at runtime.
        "scheduler_polling_interval_sec": 30.0,
    }
    if engine is not None:
        config["system_database_engine"] = engine
    return config


def _quiet_dbos_logger() -> None:
    # DBOS installs its own handler on the "dbos" logger; ours (or pytest's) should handle its records.
    dbos_log = logging.getLogger("dbos")
    for handler in list(dbos_log.handlers):
        dbos_log.removeHandler(handler)
    dbos_log.propagate = True


@dataclass
class Engine:
    """The process's DBOS: launched (runs workflows) or client-only."""

    settings: Settings
    role: Role
    executor_id: str
    client: DBOSClient
    launched: bool = False
    _sqlite_engine: sa.Engine | None = field(default=None, repr=False)

    @classmethod
    def create(cls, settings: Settings, *, role: Role, executor_id: str | None = None) -> Engine:
        engine = sqlite_system_engine(settings.effective_database_url) if settings.is_sqlite else None
        executor = executor_id or settings.executor_id or default_executor_id(role)
        return cls(
            settings=settings,
            role=role,
            executor_id=executor,
            client=make_client(settings, engine),
            _sqlite_engine=engine,
        )

    async def launch(self) -> None:
        """Construct and launch DBOS in this process, then register the queues (workers consume them)."""
        # Importing the workflow modules registers their functions before launch (recovery needs them).
        from invoiceflow.workflows import registry  # noqa: F401

        DBOS(config=dbos_config(self.settings, executor_id=self.executor_id, engine=self._sqlite_engine))
        _quiet_dbos_logger()
        DBOS.launch()
        self.launched = True
        for spec in queue_specs(self.settings):
            await DBOS.register_queue_async(
                spec.name,
                worker_concurrency=spec.worker_concurrency,
                polling_interval_sec=spec.polling_interval_sec,
                on_conflict="always_update",
            )
        log.info(
            "workflows launched (executor %s, version %s, pid %s)", self.executor_id, WORKFLOWS_VERSION, os.getpid()
        )

    def shutdown(self, *, timeout: int = 10) -> None:
        if self.launched:
            DBOS.destroy(workflow_completion_timeout_sec=timeout)
            self.launched = False
        self.client.destroy()
        if self._sqlite_engine is not None:
            self._sqlite_engine.dispose()


async def enqueue_in_session(
    session: AsyncSession, client: DBOSClient, *, workflow: str, workflow_id: str, queue: str, args: tuple[str, ...]
) -> None:
    """Start a workflow in the caller's transaction: it exists if and only if the transaction commits.

    Starting an id that already exists is harmless: DBOS keeps the first and runs nothing new.
    """
    options = EnqueueOptions(
        workflow_name=workflow, queue_name=queue, workflow_id=workflow_id, app_version=WORKFLOWS_VERSION
    )
    conn = await session.connection()
    await conn.run_sync(lambda sync_conn: client.enqueue_in_transaction(sync_conn, options, *args))
