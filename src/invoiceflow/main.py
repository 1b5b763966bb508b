"""Application factory: wires settings, database, limiter and every domain's router."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import Response

from invoiceflow import __version__
from invoiceflow.activity.router import router as activity_router
from invoiceflow.auth.router import router as auth_router
from invoiceflow.auth.security import Passwords
from invoiceflow.clients.router import router as clients_router
from invoiceflow.core.api import (
    CorrelationIdMiddleware,
    EnvelopeResponse,
    envelope,
    error_response,
    install_error_handlers,
)
from invoiceflow.core.db import Database
from invoiceflow.core.errors import AppError
from invoiceflow.core.metrics import HttpMetricsMiddleware
from invoiceflow.core.ratelimit import make_limiter
from invoiceflow.core.runtime import SEND_CHECK, Runtime, RuntimeDep
from invoiceflow.core.settings import Settings, get_settings
from invoiceflow.core.storage import make_storage
from invoiceflow.documents.router import router as documents_router
from invoiceflow.einvoicing.export_router import router as einvoice_export_router
from invoiceflow.einvoicing.import_router import router as einvoice_import_router
from invoiceflow.einvoicing.router import router as einvoicing_router
from invoiceflow.einvoicing.send_check import send_check
from invoiceflow.einvoicing.validator import get_validator
from invoiceflow.integrations.router import router as integrations_router
from invoiceflow.invoices.router import router as invoices_router
from invoiceflow.orders.router import router as orders_router
from invoiceflow.webhooks.router import router as webhooks_router
from invoiceflow.workflows.app import attach_workflows
from invoiceflow.workflows.router import router as workflows_router
from invoiceflow.workflows.uploads_router import router as uploads_router

log = logging.getLogger("invoiceflow")

DESCRIPTION = """
invoiceflow manages clients, orders and invoices for small businesses and finance teams.

Every response is an envelope: `{"success": true, "data": ..., "timestamp": ..., "correlation_id": ...}`;
errors carry `{"code", "message", "details"}`. Authenticate with `Authorization: Bearer <access_token>`
(from `/api/v1/auth/login`) or `X-API-Key: <key>`. Money is a decimal string plus an ISO 4217 currency.
"""


async def _warm_up_validator(rules_dir: Path) -> None:
    try:
        timings = await asyncio.to_thread(get_validator(rules_dir).warm_up)
    except AppError as exc:  # missing rules: validation requests will say so with a 503
        log.warning("e-invoice rules not loaded: %s", exc.message)
        return
    log.info("e-invoice rules compiled in %.2f s", sum(timings.values()))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            settings.effective_database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        runtime = Runtime(
            settings=settings,
            db=db,
            limiter=make_limiter(settings.redis_url),
            secret_key=settings.resolved_secret_key(),
        )
        runtime.extras["passwords"] = Passwords(
            time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib
        )
        storage = runtime.extras["storage"] = make_storage(settings)
        app.state.runtime = runtime
        stop_workflows = await attach_workflows(runtime, storage)
        if settings.einvoice_rules_dir is not None:
            # Compiling the official rules takes about a second: do it now, off the event loop, rather
            # than in the first validation request.
            runtime.spawn(_warm_up_validator(settings.einvoice_rules_dir))
            # With the rules at hand, no draft is issued whose e-invoice would fail them.
            runtime.extras[SEND_CHECK] = send_check(settings.einvoice_rules_dir)
        # Everything allocated so far lives as long as the process: move it out of the collector's
        # reach, so full collections stop scanning it (they caused 60-120 ms latency spikes).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in list(runtime.background):
                await task
            await stop_workflows()
            await runtime.limiter.close()
            await db.dispose()

    app = FastAPI(
        title="invoiceflow",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=EnvelopeResponse,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(CorrelationIdMiddleware, max_body_bytes=settings.max_request_bytes)
    # Outermost: counts every answer, the middleware's own 413s included.
    app.add_middleware(HttpMetricsMiddleware)
    # documents and imports before invoices: /invoices/export.xlsx and /invoices/import must win over
    # /invoices/{invoice_id}.
    for router in (
        auth_router,
        clients_router,
        orders_router,
        documents_router,
        uploads_router,
        einvoice_import_router,
        integrations_router,
        invoices_router,
        activity_router,
        webhooks_router,
        workflows_router,
    ):
        app.include_router(router)
    app.include_router(einvoicing_router)
    app.include_router(einvoice_export_router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> Response:
        """The process is up."""
        return envelope({"status": "ok", "version": __version__})

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus exposition (plain text, no envelope, no authentication: keep it on the private network)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz", tags=["ops"])
    async def readyz(runtime: RuntimeDep) -> Response:
        """The database answers; 503 otherwise."""
        try:
            async with runtime.db.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("readiness check failed: %s", exc)
            return error_response(503, "DATABASE_UNAVAILABLE", "The database is not reachable")
        return envelope({"status": "ready", "database": runtime.db.write_engine.dialect.name})

    return app
