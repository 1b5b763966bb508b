"""One page of a job: fetch → validate → deduplicate → push → record (see the package's docstring)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.core import metrics
from invoiceflow.core.db import Database, utcnow
from invoiceflow.core.errors import AppError
from invoiceflow.core.failpoints import failpoint
from invoiceflow.core.settings import Settings
from invoiceflow.integrations.connectors.base import (
    ExternalApiError,
    PushResult,
)
from invoiceflow.integrations.dedupe import Identity, decide, idempotency_key, lookup_sent
from invoiceflow.integrations.jobs.connections import next_page, open_connectors
from invoiceflow.integrations.jobs.core import (
    ERROR_CHARS,
    ConnectorFactory,
    PageResult,
    busy,
    hold_lock,
    load_job,
    start_job,
    write_session,
)
from invoiceflow.integrations.models import (
    FINAL_STATUSES,
    IntegrationJob,
    IntegrationJobItem,
    SentRecord,
)
from invoiceflow.integrations.validation import Checked

# --- one page ----------------------------------------------------------------------------------------------


_COUNTED = ("sent", "duplicate", "invalid", "failed", "changed")


def _counts(outcomes: Sequence[str]) -> dict[str, int]:
    return {outcome: sum(1 for o in outcomes if o == outcome) for outcome in _COUNTED}


async def _replay(session: AsyncSession, job: IntegrationJob, page_no: int) -> PageResult:
    outcomes = list(
        (
            await session.execute(
                select(IntegrationJobItem.outcome).where(
                    IntegrationJobItem.job_id == job.id, IntegrationJobItem.page_no == page_no
                )
            )
        ).scalars()
    )
    counts = _counts(outcomes)
    last = page_no >= job.pages_done - 1
    return PageResult(
        page_no=page_no,
        fetched=len(outcomes),
        sent=counts["sent"],
        duplicates=counts["duplicate"],
        invalid=counts["invalid"],
        failed=counts["failed"],
        changed=counts["changed"],
        more=not (last and (job.source_exhausted or job.error is not None)),
        replayed=True,
        error=job.error if last else None,
    )


def _filename(source_id: str, fmt: str) -> str:
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in source_id.rsplit("/", 1)[-1])[:100]
    return stem if stem.lower().endswith(".xml") else f"{stem or 'invoice'}.{fmt}.xml"


@dataclass
class _Push:
    item_id: uuid.UUID
    content: bytes
    key: str
    filename: str
    resumed: bool
    identity: Identity | None
    sha256: str | None
    result: PushResult | None = None
    error: ExternalApiError | None = None


def _ledger_identity(supplier: str | None, number: str | None) -> Identity | None:
    return Identity(supplier, number) if supplier and number else None


async def process_page(
    db: Database,
    job_id: uuid.UUID,
    page_no: int,
    *,
    settings: Settings,
    connectors: ConnectorFactory | None = None,
) -> PageResult:
    """Handle page `page_no` (0-based) of the job, or replay it when it was recorded already.

    Safe to run twice, also concurrently (a retried workflow step): the page is recorded once, and a second
    run pushes nothing that the first run's items do not name, always with the same Idempotency-Key.
    Raises `IntegrationBusy` when another job holds the integration's run lock, `ExternalApiError` when the
    source cannot be read, and whatever else stops it; the job then ends with `finish_job(error=…)`.

    A job asked to stop (`cancel_requested_at`) starts no new page: the answer is `cancelled`, with no next
    page, and nothing is fetched or pushed. A page already begun (its items recorded by transaction A, e.g.
    before a crash) is still finished, so every push the destination may have accepted reaches the ledger.
    """
    try:
        return await _process_page(db, job_id, page_no, settings=settings, connectors=connectors)
    except _Cancelled:
        return PageResult(page_no=page_no, more=False, cancelled=True)
    except _Recorded:
        async with db.read_sessions() as session:
            job, _ = await load_job(session, job_id)
            result = await _replay(session, job, page_no)
        return result


async def _process_page(
    db: Database,
    job_id: uuid.UUID,
    page_no: int,
    *,
    settings: Settings,
    connectors: ConnectorFactory | None,
) -> PageResult:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    async with db.read_sessions() as session:
        job, integration = await load_job(session, job_id)
    if job.status in FINAL_STATUSES:
        return PageResult(page_no=page_no, more=False, replayed=True, error=job.error)
    if integration.deleted_at is not None:
        raise AppError("The integration was deleted", code="INTEGRATION_DELETED")
    if job.started_at is None:  # not started: take the lock and the starting cursor first
        if not await start_job(db, job_id):
            raise busy(job.integration_id)
        async with db.read_sessions() as session:
            job, integration = await load_job(session, job_id)
    if page_no > job.pages_done:
        raise ValueError(f"page {page_no} of job {job_id} asked for before page {job.pages_done}")
    if page_no < job.pages_done or job.source_exhausted or job.error is not None:
        async with db.read_sessions() as session:
            result = await _replay(session, job, min(page_no, max(job.pages_done - 1, 0)))
        if page_no == job.pages_done:  # nothing left to fetch
            return PageResult(page_no=page_no, more=False, replayed=True, error=job.error)
        return result
    if job.cancel_requested_at is not None:  # the page boundary: stop before fetching a page not begun
        async with db.read_sessions() as session:
            if not await _page_begun(session, job.id, page_no):
                raise _Cancelled()

    opened = await open_connectors(db, settings, job, integration, connectors)
    wanted = set(job.invoice_ids) if job.invoice_ids is not None else None
    fetched = await next_page(opened, job.cursor, integration.page_size, wanted)
    page, documents, checked = fetched.page, fetched.documents, fetched.checked
    # fetch and validate ran ahead, overlapping the previous page; "wait" is what this page waited for them.
    timings["fetch"], timings["validate"] = fetched.fetch_seconds, fetched.validate_seconds
    timings["wait"] = time.perf_counter() - started

    # --- transaction A: decide and record, `pushing` before any push --------------------------------------
    mark = time.perf_counter()
    pushes: list[_Push] = []
    outcomes: dict[uuid.UUID, str] = {}
    async with write_session(db) as session:
        if not await hold_lock(session, job.id, integration.id):
            raise busy(integration.id)
        job, integration = await load_job(session, job_id)
        if job.pages_done != page_no or job.status in FINAL_STATUSES:
            raise _Recorded()
        # Asked to stop while the page was fetched: nothing of it is recorded or pushed yet, so stop here too.
        if job.cancel_requested_at is not None and not await _page_begun(session, job.id, page_no):
            raise _Cancelled()
        existing = {
            item.source_id: item
            for item in (
                await session.execute(
                    select(IntegrationJobItem).where(
                        IntegrationJobItem.job_id == job.id,
                        IntegrationJobItem.source_id.in_([doc.source_id for doc in documents]),
                    )
                )
            ).scalars()
        }
        fresh = [(doc, check) for doc, check in zip(documents, checked, strict=True) if doc.source_id not in existing]
        valid = [(doc, check) for doc, check in fresh if check.valid and check.identity is not None]
        sent = await lookup_sent(session, integration.destination_key, [c.identity for _, c in valid if c.identity])
        decisions = decide(
            [(check.identity, check.sha256) for _, check in valid if check.identity is not None],
            sent,
            force=job.force_processing,
        )
        decided = {doc.source_id: decision for (doc, _), decision in zip(valid, decisions, strict=True)}
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for position, (doc, check) in enumerate(zip(documents, checked, strict=True)):
            item = existing.get(doc.source_id)
            if item is not None:
                if item.page_no != page_no:  # listed again by the source: handled on its first page
                    continue
                outcomes[item.id] = item.outcome
                if item.outcome == "pushing" and item.idempotency_key:
                    pushes.append(
                        _Push(
                            item.id,
                            doc.content,
                            item.idempotency_key,
                            _filename(doc.source_id, doc.format),
                            True,
                            _ledger_identity(item.supplier_key, item.invoice_number),
                            item.document_sha256,
                        )
                    )
                continue
            row = _item_row(job, page_no, position, doc.source_id, check, now)
            decision = decided.get(doc.source_id)
            if decision is None:
                row["outcome"] = "invalid"
                row["rule_ids"] = list(check.rule_ids)
                row["error"] = check.message
            else:
                kind, compared = decision
                assert check.identity is not None
                if kind == "send":
                    key = idempotency_key(
                        integration.destination_key,
                        check.identity,
                        check.sha256,
                        force_job=job.id if job.force_processing and compared is not None else None,
                    )
                    row["outcome"], row["idempotency_key"] = "pushing", key
                    pushes.append(
                        _Push(
                            row["id"],
                            doc.content,
                            key,
                            _filename(doc.source_id, doc.format),
                            False,
                            check.identity,
                            check.sha256,
                        )
                    )
                elif kind == "duplicate":
                    row["outcome"] = "duplicate"
                    row["error"] = None
                else:
                    row["outcome"] = "changed"
                    row["error"] = (
                        f"Invoice {check.identity.invoice_number} of {check.identity.supplier_key} was sent before "
                        f"with other content (SHA-256 {compared}); not sent again: use force_processing to send it"
                    )
            outcomes[row["id"]] = row["outcome"]
            rows.append(row)
        if rows:
            await session.execute(insert(_ITEMS), rows)
    timings["dedupe"] = time.perf_counter() - mark

    # --- push --------------------------------------------------------------------------------------------
    mark = time.perf_counter()
    gate = asyncio.Semaphore(max(1, opened.concurrency))

    async def push(entry: _Push) -> None:
        async with gate:
            try:
                entry.result = await opened.destination.push(
                    entry.content, idempotency_key=entry.key, filename=entry.filename
                )
                failpoint("integration.push")  # the destination has it; transaction B has not recorded it
            except ExternalApiError as exc:
                entry.error = exc

    try:
        async with asyncio.TaskGroup() as group:
            for entry in pushes:
                group.create_task(push(entry))
    except BaseExceptionGroup as failed:  # the other pushes were cancelled; their items stay `pushing`
        raise failed.exceptions[0] from None
    timings["push"] = time.perf_counter() - mark

    # --- transaction B: outcomes, ledger, counters, cursor ---------------------------------------------------
    mark = time.perf_counter()
    unavailable = next((entry.error for entry in pushes if entry.error is not None), None)
    now = utcnow()
    updates: list[dict[str, Any]] = []
    ledger: list[dict[str, Any]] = []
    for entry in pushes:
        values = _push_outcome(entry)
        outcomes[entry.item_id] = values["outcome"]
        updates.append({"item_id": entry.item_id, **values, "updated_at": now})
        if values["outcome"] in ("sent", "duplicate") and entry.identity is not None and entry.sha256:
            ledger.append(
                {
                    "destination_key": None,  # set in the transaction, from the integration read there
                    "supplier_key": entry.identity.supplier_key,
                    "invoice_number": entry.identity.invoice_number,
                    "organization_id": job.organization_id,
                    "document_sha256": entry.sha256,
                    "job_id": job.id,
                    "remote_id": values["remote_id"],
                    "sent_at": now,
                }
            )
    exhausted = (
        not page.documents
        or page.next_cursor is None
        or page.next_cursor == job.cursor  # a source that does not move on: stop rather than loop
        # A filtered job records only the documents it wants: once it has them all, it is done.
        or (wanted is not None and job.total + len(outcomes) >= len(wanted))
    )
    error = None
    if unavailable is not None:
        error = f"The destination is unavailable: {unavailable.message}"
    advance = unavailable is None
    plain = not job.force_processing and job.invoice_ids is None
    extra: dict[str, Any] = {"cursor": page.next_cursor} if advance and plain and page.next_cursor else {}
    async with write_session(db) as session:
        if not await hold_lock(session, job.id, integration.id, **extra):
            raise busy(integration.id)
        job, integration = await load_job(session, job_id)
        if job.pages_done != page_no or job.status in FINAL_STATUSES:
            raise _Recorded()
        if updates:
            await _update_items(session, updates)
        if ledger:
            for row in ledger:
                row["destination_key"] = integration.destination_key
            await _upsert_ledger(session, ledger, overwrite=job.force_processing)
        counts = _counts(list(outcomes.values()))
        recorded = await session.execute(
            update(IntegrationJob)
            .where(IntegrationJob.id == job.id, IntegrationJob.pages_done == page_no)
            .values(
                pages_done=page_no + 1,
                cursor=page.next_cursor if advance and page.next_cursor else job.cursor,
                source_exhausted=exhausted or not advance,
                error=error,
                total=IntegrationJob.total + len(outcomes),
                processed=IntegrationJob.processed + counts["sent"],
                duplicates=IntegrationJob.duplicates + counts["duplicate"],
                invalid=IntegrationJob.invalid + counts["invalid"],
                failed=IntegrationJob.failed + counts["failed"],
                changed=IntegrationJob.changed + counts["changed"],
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if recorded.rowcount != 1:  # type: ignore[attr-defined]
            raise _Recorded()
    timings["record"] = time.perf_counter() - mark
    for outcome, count in counts.items():
        if count:
            metrics.invoice_processing_total.labels(outcome=outcome).inc(count)
    return PageResult(
        page_no=page_no,
        fetched=len(outcomes),
        sent=counts["sent"],
        duplicates=counts["duplicate"],
        invalid=counts["invalid"],
        failed=counts["failed"],
        changed=counts["changed"],
        more=not exhausted and advance,
        error=error,
        timings=timings,
    )


_ITEMS = cast(Table, IntegrationJobItem.__table__)


class _Recorded(Exception):
    """The page was recorded by another run of the same step meanwhile."""


class _Cancelled(Exception):
    """The job was asked to stop before this page was begun."""


async def _page_begun(session: AsyncSession, job_id: uuid.UUID, page_no: int) -> bool:
    """Transaction A of the page was committed (by this run or an interrupted one): some of its documents may
    have been pushed, so the page must be finished and recorded, cancelled or not."""
    found = await session.execute(
        select(IntegrationJobItem.id)
        .where(IntegrationJobItem.job_id == job_id, IntegrationJobItem.page_no == page_no)
        .limit(1)
    )
    return found.first() is not None


def _item_row(
    job: IntegrationJob, page_no: int, position: int, source_id: str, check: Checked, now: Any
) -> dict[str, Any]:
    identity: Identity | None = check.identity
    return {
        "id": uuid.uuid4(),
        "job_id": job.id,
        "page_no": page_no,
        "position": position,
        "source_id": source_id[:255],
        "supplier_key": identity.supplier_key if identity else None,
        "invoice_number": identity.invoice_number if identity else None,
        "document_sha256": check.sha256,
        "outcome": "invalid",
        "idempotency_key": None,
        "rule_ids": None,
        "error": None,
        "status_code": None,
        "remote_id": None,
        "response": None,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _push_outcome(entry: _Push) -> dict[str, Any]:
    if entry.error is not None:
        exc = entry.error
        return {
            "outcome": "failed",
            "error": exc.message[:ERROR_CHARS],
            "status_code": exc.upstream_status,
            "remote_id": None,
            "response": None,
            "attempts": exc.retry_count + 1,
        }
    result = entry.result
    assert result is not None
    outcome = {"accepted": "sent", "duplicate": "duplicate", "rejected": "failed"}[result.outcome]
    # A 409 for a key we pushed before (an earlier attempt's answer was lost, or the job crashed after
    # pushing): the destination has it from us, so it counts as sent.
    if result.outcome == "duplicate" and (entry.resumed or result.attempts > 1):
        outcome = "sent"
    error = None
    if outcome == "failed":
        error = f"Rejected by the destination (HTTP {result.status_code}): {result.response[:500]}"
    return {
        "outcome": outcome,
        "error": error,
        "status_code": result.status_code,
        "remote_id": result.remote_id,
        "response": result.response[:ERROR_CHARS],
        "attempts": result.attempts,
    }


async def _update_items(session: AsyncSession, updates: list[dict[str, Any]]) -> None:
    table = _ITEMS
    statement = (
        update(table)
        .where(table.c.id == bindparam("item_id"))
        .values(
            outcome=bindparam("outcome"),
            error=bindparam("error"),
            status_code=bindparam("status_code"),
            remote_id=bindparam("remote_id"),
            response=bindparam("response"),
            attempts=table.c.attempts + bindparam("attempts"),
            updated_at=bindparam("updated_at"),
        )
    )
    await session.execute(statement, updates)


async def _upsert_ledger(session: AsyncSession, rows: list[dict[str, Any]], *, overwrite: bool) -> None:
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    statement = insert(SentRecord)
    keys = [SentRecord.destination_key, SentRecord.supplier_key, SentRecord.invoice_number]
    if overwrite:
        statement = statement.on_conflict_do_update(
            index_elements=keys,
            set_={
                "document_sha256": statement.excluded.document_sha256,
                "job_id": statement.excluded.job_id,
                "remote_id": statement.excluded.remote_id,
                "sent_at": statement.excluded.sent_at,
            },
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    await session.execute(statement, rows)
