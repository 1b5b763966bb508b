"""A process that runs workflows: DBOS plus the loops around it.

- heartbeat: this executor's row in `executor_heartbeats`, beaten every `workflow_heartbeat_seconds`;
- recovery: four times per `workflow_dead_after_seconds`, the PENDING workflows of executors of our version
  that have been silent that long are handed back to the queues (DBOS 3.4.0 only recovers an executor's
  workflows when that same executor starts again);
- events: `dispatch_once` delivers the event log to webhooks and RabbitMQ every `DISPATCH_SECONDS`, at
  once when a step recorded events (at most one round per `DISPATCH_MIN_GAP_SECONDS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from dbos import DBOS
from sqlalchemy import or_, select, update

from invoiceflow.core.db import Database, utcnow
from invoiceflow.core.settings import Settings
from invoiceflow.core.storage import Storage, make_storage
from invoiceflow.documents import render_pool
from invoiceflow.documents.service import store_from_settings
from invoiceflow.notifications.service import notifier_for
from invoiceflow.webhooks.dispatch import dispatch_once
from invoiceflow.webhooks.rabbitmq import EventPublisher, publisher_from_settings
from invoiceflow.workflows import deps as workflow_deps
from invoiceflow.workflows import retry
from invoiceflow.workflows.engine import WORKFLOWS_VERSION, Engine
from invoiceflow.workflows.models import ExecutorHeartbeat
from invoiceflow.workflows.schedules import apply_schedules

log = logging.getLogger("invoiceflow.workflows")

DISPATCH_SECONDS = 2.0
DISPATCH_MIN_GAP_SECONDS = 0.2


async def beat(db: Database, *, executor_id: str, role: str) -> None:
    now = utcnow()
    async with db.write_sessions() as session:
        row = await session.get(ExecutorHeartbeat, executor_id)
        if row is None:
            session.add(
                ExecutorHeartbeat(
                    executor_id=executor_id,
                    app_version=WORKFLOWS_VERSION,
                    role=role,
                    hostname=socket.gethostname()[:255],
                    pid=os.getpid(),
                    started_at=now,
                    seen_at=now,
                )
            )
        else:
            row.app_version, row.role, row.pid, row.seen_at = WORKFLOWS_VERSION, role, os.getpid(), now
        await session.commit()


async def claim_dead_executors(db: Database, *, executor_id: str, dead_after: timedelta) -> list[str]:
    """The silent executors of our version that this process now takes over (each claimed by one survivor
    per silence: the guarded UPDATE lets only one checker win)."""
    now = utcnow()
    async with db.write_sessions() as session:
        candidates = (
            (
                await session.execute(
                    select(ExecutorHeartbeat.executor_id).where(
                        ExecutorHeartbeat.app_version == WORKFLOWS_VERSION,
                        ExecutorHeartbeat.executor_id != executor_id,
                        ExecutorHeartbeat.seen_at < now - dead_after,
                        or_(
                            ExecutorHeartbeat.recovered_at.is_(None),
                            ExecutorHeartbeat.recovered_at < ExecutorHeartbeat.seen_at,
                        ),
                    )
                )
            )
            .scalars()
            .all()
        )
        claimed: list[str] = []
        for dead in candidates:
            result = await session.execute(
                update(ExecutorHeartbeat)
                .where(
                    ExecutorHeartbeat.executor_id == dead,
                    or_(
                        ExecutorHeartbeat.recovered_at.is_(None),
                        ExecutorHeartbeat.recovered_at < ExecutorHeartbeat.seen_at,
                    ),
                )
                .values(recovered_at=now, recovered_by=executor_id)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(dead)
        await session.commit()
    return claimed


class Runner:
    """DBOS launched in this process, with its dependencies and background loops."""

    def __init__(self, settings: Settings, db: Database, engine: Engine, *, storage: Storage | None = None) -> None:
        self.settings = settings
        self.db = db
        self.engine = engine
        store = store_from_settings(db, storage or make_storage(settings), settings)
        # A workflow's email has one sender at a time (DBOS runs a workflow on one executor), so a pending
        # delivery claim found by its step is the claim of an attempt that died: take it over at once,
        # under the same Message-ID, instead of waiting out the lease meant for unrelated callers.
        notifier = dataclasses.replace(notifier_for(settings, db), in_flight_lease=timedelta(0))
        self.deps = workflow_deps.WorkflowDeps(
            settings=settings, db=db, store=store, notifier=notifier, client=engine.client
        )
        self.publisher: EventPublisher | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        workflow_deps.install(self.deps)
        retry.delay_scale = self.settings.workflow_retry_delay_scale
        await beat(self.db, executor_id=self.engine.executor_id, role=self.engine.role)
        render_pool.warm_up(self.deps.store.render_workers)
        await self.engine.launch()
        await apply_schedules()
        self.publisher = publisher_from_settings(self.settings)
        self._spawn(self._heartbeat_loop())
        self._spawn(self._recovery_loop())
        self._spawn(self._dispatch_loop())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.to_thread(self.engine.shutdown)
        if self.publisher is not None:
            await self.publisher.close()
        workflow_deps.install(None)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.workflow_heartbeat_seconds)
            try:
                await beat(self.db, executor_id=self.engine.executor_id, role=self.engine.role)
            except Exception:
                log.warning("heartbeat failed", exc_info=True)

    async def recover_once(self) -> list[str]:
        dead = await claim_dead_executors(
            self.db,
            executor_id=self.engine.executor_id,
            dead_after=timedelta(seconds=self.settings.workflow_dead_after_seconds),
        )
        if dead:
            handles = await asyncio.to_thread(DBOS._recover_pending_workflows, dead)
            log.warning("took over %s workflows of silent executors %s", len(handles), ", ".join(dead))
        return dead

    async def _recovery_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.workflow_dead_after_seconds / 4)
            try:
                await self.recover_once()
            except Exception:
                log.warning("dead-executor check failed", exc_info=True)

    async def _dispatch_loop(self) -> None:
        wake = self.deps.events_recorded
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=DISPATCH_SECONDS)
            wake.clear()
            try:
                await dispatch_once(
                    self.db,
                    now=utcnow(),
                    publisher=self.publisher,
                    allow_private_networks=self.settings.webhook_allow_private_networks,
                )
            except Exception:
                log.warning("event dispatch round failed", exc_info=True)
            # Under load steps record events continuously: one round per gap picks up all of them at once.
            await asyncio.sleep(DISPATCH_MIN_GAP_SECONDS)
