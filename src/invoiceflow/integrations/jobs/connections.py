"""A running job's connectors and validation processes, kept between its pages, and the page read ahead."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from invoiceflow.core.db import Database
from invoiceflow.core.errors import AppError
from invoiceflow.core.settings import Settings
from invoiceflow.integrations.connectors import (
    DestinationFactory,
    SourceFactory,
    make_destination,
    make_source,
)
from invoiceflow.integrations.connectors.base import (
    Destination,
    Source,
    SourceDocument,
    SourcePage,
)
from invoiceflow.integrations.jobs.core import DEFAULT_CONCURRENCY, ConnectorFactory, log
from invoiceflow.integrations.models import (
    Integration,
    IntegrationJob,
)
from invoiceflow.integrations.resilience import LimiterRegistry
from invoiceflow.integrations.validation import Checked, DocumentChecker, default_workers

# --- connectors --------------------------------------------------------------------------------------------


@dataclass
class _Fetched:
    """A page fetched from `cursor` and checked."""

    cursor: str | None
    page: SourcePage
    documents: list[SourceDocument]
    checked: list[Checked]
    fetch_seconds: float
    validate_seconds: float


@dataclass
class _Open:
    """A running job's connectors and checker, kept between its pages (in this process and event loop), and
    the next page, fetched and checked ahead while this one is pushed and recorded."""

    loop: asyncio.AbstractEventLoop
    source: Source
    destination: Destination
    checker: DocumentChecker
    concurrency: int
    ahead: tuple[str | None, asyncio.Task[_Fetched]] | None = None


_open: dict[uuid.UUID, _Open] = {}


# One per process: jobs pushing to the same partner share its concurrency cap, rate limit and circuit breaker.
_limiters = LimiterRegistry()


def default_connectors(db: Database, settings: Settings) -> ConnectorFactory:
    """Source and destination of an integration, from its stored settings and decrypted secrets."""

    def build(integration: Integration) -> tuple[Source, Destination]:
        from invoiceflow.integrations import service

        source_side = service.connector_settings(settings, integration, "source")
        dest_side = service.connector_settings(settings, integration, "destination")
        own_source, own_destination = own_kinds(db, settings, integration.organization_id)
        source = make_source(
            source_side.config,
            source_side.secrets,
            extra={"invoiceflow": own_source},
            folder_roots=source_side.folder_roots,
        )
        try:
            destination = make_destination(
                dest_side.config,
                dest_side.secrets,
                limiter_registry=_limiters,
                extra={"invoiceflow": own_destination},
                folder_roots=dest_side.folder_roots,
            )
        except BaseException:
            asyncio.get_running_loop().create_task(source.aclose())
            raise
        return source, destination

    return build


def own_kinds(db: Database, settings: Settings, organization_id: uuid.UUID) -> tuple[SourceFactory, DestinationFactory]:
    """The `invoiceflow` kind's factories (`extra=` of `make_source` / `make_destination`)."""
    from invoiceflow.core.storage import make_storage
    from invoiceflow.einvoicing.validator import get_validator
    from invoiceflow.integrations.own import InvoiceflowDestination, InvoiceflowSource

    def source(_config: dict[str, Any], _secrets: dict[str, Any]) -> Source:
        return InvoiceflowSource(db, organization_id)

    def destination(_config: dict[str, Any], _secrets: dict[str, Any]) -> Destination:
        rules = settings.einvoice_rules_dir
        return InvoiceflowDestination(
            db,
            organization_id,
            storage=make_storage(settings),
            validator=get_validator(rules) if rules is not None else None,
        )

    return source, destination


async def open_connectors(
    db: Database, settings: Settings, job: IntegrationJob, integration: Integration, factory: ConnectorFactory | None
) -> _Open:
    loop = asyncio.get_running_loop()
    opened = _open.get(job.id)
    if opened is not None and opened.loop is not loop:  # left behind by another event loop: unusable here
        _open.pop(job.id, None)
        opened = None
    if opened is None:
        if settings.einvoice_rules_dir is None:
            raise AppError(
                "Integration jobs validate every document: set INVOICEFLOW_EINVOICE_RULES_DIR",
                code="EINVOICE_RULES_MISSING",
            )
        source, destination = (factory or default_connectors(db, settings))(integration)
        concurrency = int(integration.destination.get("max_concurrency") or DEFAULT_CONCURRENCY)
        workers = default_workers(settings.integration_validation_workers)
        checker = DocumentChecker(settings.einvoice_rules_dir, workers)
        opened = _open[job.id] = _Open(loop, source, destination, checker, concurrency)
    return opened


async def close_connectors(job_id: uuid.UUID) -> None:
    """Close the job's connectors and drop its read-ahead page (called by `finish_job`)."""
    opened = _open.pop(job_id, None)
    if opened is None:
        return
    if opened.ahead is not None:
        task = opened.ahead[1]
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    for connector in (opened.source, opened.destination):
        try:
            await connector.aclose()
        except Exception:  # noqa: BLE001 - closing must not hide the job's own outcome
            log.warning("closing a connector of job %s failed", job_id, exc_info=True)


async def _fetch_checked(opened: _Open, cursor: str | None, limit: int, wanted: set[str] | None) -> _Fetched:
    started = time.perf_counter()
    page = await opened.source.fetch_page(cursor, limit)
    fetched = time.perf_counter()
    documents = [doc for doc in page.documents if wanted is None or doc.source_id in wanted]
    # One item per source id and job: a source that lists a document twice in a page gets it handled once.
    documents = list({doc.source_id: doc for doc in documents}.values())
    checked = await opened.checker.check([doc.content for doc in documents])
    return _Fetched(cursor, page, documents, checked, fetched - started, time.perf_counter() - fetched)


async def next_page(opened: _Open, cursor: str | None, limit: int, wanted: set[str] | None) -> _Fetched:
    """The page at `cursor`: the one read ahead when it is that one, else fetched and checked now. Then the
    page after it is read ahead (fetching and validating have no side effects: a page read ahead and never
    used is simply dropped)."""
    ahead, opened.ahead = opened.ahead, None
    if ahead is not None and ahead[0] == cursor:
        current = await ahead[1]
    else:
        if ahead is not None:
            ahead[1].cancel()
            with contextlib.suppress(BaseException):
                await ahead[1]
        current = await _fetch_checked(opened, cursor, limit, wanted)
    following = current.page.next_cursor
    if current.page.documents and following is not None and following != cursor:
        opened.ahead = (following, asyncio.create_task(_fetch_checked(opened, following, limit, wanted)))
    return current
