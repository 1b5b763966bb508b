"""Process-wide resources built once by the app factory and reached through `request.app.state`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core.db import Database
from invoiceflow.core.ratelimit import Limiter
from invoiceflow.core.settings import Settings

AfterCommit = Callable[[], Coroutine[Any, Any, None]]
# `extras` key of the check a draft invoice must pass before it is sent (set by the app factory when the
# e-invoice rules are configured; invoices/router.py applies it).
SEND_CHECK = "send_check"
# `extras` key of `async (session, invoice) -> None`, called in the transaction that issues an invoice: it
# starts the invoice's workflow (documents, email, events), so both commit or neither does.
ON_ISSUED = "on_issued"
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


@dataclass
class Runtime:
    settings: Settings
    db: Database
    limiter: Limiter
    secret_key: str
    extras: dict[str, Any] = field(default_factory=dict)
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """One request = one transaction, committed here, before the response is sent.

    Safe methods and routes marked `reads_only` get a read session; anything else a write session
    (BEGIN IMMEDIATE on SQLite).
    Work registered in `session.info["after_commit"]` runs once the commit succeeded.
    """
    runtime: Runtime = request.app.state.runtime
    write = request.method not in ("GET", "HEAD", "OPTIONS") and not getattr(
        request.scope.get("endpoint"), "reads_only", False
    )
    lock = runtime.db.write_lock if write else None
    if lock is not None:
        await lock.acquire()
    try:
        factory = runtime.db.write_sessions if write else runtime.db.read_sessions
        async with factory() as session:
            session.info["after_commit"] = []
            try:
                yield session
                if write:
                    await session.commit()
                else:
                    await session.rollback()
            except BaseException:
                await session.rollback()
                raise
    finally:
        if lock is not None:
            lock.release()
    for job in session.info["after_commit"]:
        runtime.spawn(job())


def reads_only(endpoint: _Endpoint) -> _Endpoint:
    """Mark a POST route that changes nothing (e.g. validating an uploaded document): it gets a read
    session, so on SQLite it never holds the single writer's lock while it works."""
    endpoint.reads_only = True  # type: ignore[attr-defined]
    return endpoint


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def after_commit(session: AsyncSession, job: AfterCommit) -> None:
    session.info.setdefault("after_commit", []).append(job)
