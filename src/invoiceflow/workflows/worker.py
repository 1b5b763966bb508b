"""`invoiceflow worker`: a process that runs workflows and delivers events, and serves no HTTP.

Scale-out mode runs any number of them next to the API processes, on PostgreSQL. Each needs a stable
executor id (`--executor-id` or `INVOICEFLOW_EXECUTOR_ID`, unique among running workers): started again
under the same id, a worker resumes the workflows it was running; a worker that never comes back has its
workflows taken over by the others once its heartbeat is older than a minute.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from invoiceflow.core.db import Database
from invoiceflow.core.settings import Settings
from invoiceflow.workflows.engine import Engine
from invoiceflow.workflows.runner import Runner

log = logging.getLogger("invoiceflow.worker")


async def run_worker(settings: Settings, *, executor_id: str | None = None, ready_message: bool = True) -> None:
    db = Database(
        settings.effective_database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
    )
    engine = Engine.create(settings, role="worker", executor_id=executor_id)
    runner = Runner(settings, db, engine)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runner.start()
    if ready_message:
        print(f"worker {engine.executor_id} running workflows", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.stop()
        await db.dispose()
