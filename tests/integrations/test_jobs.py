"""Real integration jobs between the fake partner servers, on both databases: every valid invoice arrives once,
the others are reported, faults are survived, reruns and concurrent runs send nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from invoiceflow.core.db import Database
from invoiceflow.core.settings import Settings
from invoiceflow.integrations import jobs
from invoiceflow.integrations.connectors.base import Destination, PushResult, Source
from invoiceflow.integrations.models import Integration
from tests.integrations.helpers import (
    examples,
    expectations,
    http_integration,
    item_outcomes,
    ledger_size,
    load_job,
    make_integration,
    make_job,
    make_org,
    outcomes,
    renumbered,
    settings_for,
    valid_unique_examples,
)
from tests.integrations.partners import DestinationServer, Fault, SourceServer


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path)


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


@pytest.fixture
def destination() -> Iterator[DestinationServer]:
    with DestinationServer() as server:
        yield server


async def _integration(
    database: Database,
    settings: Settings,
    source: SourceServer,
    destination: DestinationServer,
    *,
    dest: dict[str, object] | None = None,
    **overrides: object,
) -> Integration:
    org = await make_org(database)
    data = http_integration(source.url, destination.url, destination=dest or {}, **overrides)
    return await make_integration(database, settings, org, data)


def _keys_per_invoice(destination: DestinationServer) -> dict[tuple[str, str], set[str | None]]:
    keys: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for received in destination.received:
        if received.invoice is not None:
            keys[received.invoice].add(received.key)
    return keys


@pytest.mark.anyio
async def test_a_job_sends_every_valid_example_once_and_reports_the_others(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer, db: Engine
) -> None:
    documents = examples()
    source.add(*documents)
    expected = outcomes(expectations(documents))
    integration = await _integration(database, settings, source, destination)

    summary = await jobs.run_job(database, await make_job(database, integration), settings=settings)

    recorded = item_outcomes(db, summary.job_id)
    assert {source_id: outcome for source_id, (outcome, _) in recorded.items()} == expected
    for doc in expectations(documents):
        if not doc.valid:  # the failing rules are named, as the official results list them
            assert set(recorded[doc.source_id][1] or ()) == doc.rule_ids, doc.source_id
    sent = sum(1 for outcome in expected.values() if outcome == "sent")
    assert (summary.status, summary.total, summary.processed) == ("completed_with_errors", len(documents), sent)
    assert summary.invalid == sum(1 for o in expected.values() if o == "invalid")
    assert summary.changed == sum(1 for o in expected.values() if o == "changed")
    assert summary.failed == 0
    assert destination.accepted_count == destination.received_count == sent
    assert ledger_size(db) == sent

    # Caught up: the next run starts where this one ended and sends nothing.
    again = await jobs.run_job(database, await make_job(database, integration), settings=settings)
    assert (again.status, again.total) == ("completed", 0)
    # A new invoice at the source is all the run after that sees and sends; one re-listed is a duplicate.
    first_sent = valid_unique_examples(1)[0]
    source.add(renumbered(first_sent, "NEW-0001", source_id="new-1"), first_sent)
    third = await jobs.run_job(database, await make_job(database, integration), settings=settings)
    assert (third.total, third.processed, third.duplicates) == (2, 1, 1)
    assert destination.received_count == sent + 1


@pytest.mark.anyio
async def test_faults_at_both_partners_are_survived_and_nothing_arrives_twice(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer
) -> None:
    documents = valid_unique_examples(12)
    source.add(*documents)
    source.faults = {1: Fault.unavailable(503), 3: Fault.drop()}
    destination.set_faults(
        {
            1: Fault.unavailable(503),
            2: Fault.rate_limited(retry_after=0),
            4: Fault.timeout(seconds=0.6),
            6: Fault.drop(),
            8: Fault.drop(after_accept=True),  # accepted, but the answer is lost: the retry hears 409
            10: Fault.slow(0.1),
            11: Fault.unavailable(502),
        }
    )
    integration = await _integration(
        database, settings, source, destination, page_size=5, dest={"timeout_seconds": 0.3}
    )

    summary = await jobs.run_job(database, await make_job(database, integration), settings=settings)

    assert (summary.status, summary.processed, summary.failed, summary.duplicates) == ("completed", 12, 0, 0)
    assert destination.accepted_count == 12
    # Every retry carried the invoice's one Idempotency-Key.
    assert all(len(keys) == 1 for keys in _keys_per_invoice(destination).values())
    assert destination.stats()["status_counts"].get("409") == 1


@pytest.mark.anyio
async def test_a_destination_that_stays_down_fails_the_job_and_the_next_run_sends_the_rest(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer, db: Engine
) -> None:
    documents = valid_unique_examples(10)
    source.add(*documents)
    destination.set_faults(lambda number, _key: Fault.unavailable(503) if number > 3 else None)
    integration = await _integration(
        database, settings, source, destination, page_size=5, dest={"max_attempts": 2, "max_concurrency": 1}
    )

    first = await jobs.run_job(database, await make_job(database, integration), settings=settings)

    assert first.status == "failed"
    assert first.error is not None
    assert "destination is unavailable" in first.error
    assert first.processed == 3
    assert first.failed == 2
    async with database.read_sessions() as session:
        stored = await session.get(Integration, integration.id)
        assert stored is not None
        assert stored.cursor is None
        assert stored.active_job_id is None

    destination.set_faults(None)
    second = await jobs.run_job(database, await make_job(database, integration), settings=settings)

    assert (second.status, second.processed, second.duplicates) == ("completed", 7, 3)
    assert destination.accepted_count == 10
    assert all(len(keys) == 1 for keys in _keys_per_invoice(destination).values())
    assert ledger_size(db) == 10


@pytest.mark.anyio
async def test_a_manual_and_a_scheduled_job_at_once_send_every_invoice_once(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer
) -> None:
    documents = valid_unique_examples(15)
    source.add(*documents)
    destination.set_faults(lambda _number, _key: Fault.slow(0.02))
    integration = await _integration(database, settings, source, destination, page_size=5)
    manual = await make_job(database, integration)
    scheduled = await make_job(database, integration, job_type="scheduled", trigger="schedule:2026-11-22T02:00")

    first, second = await asyncio.gather(
        jobs.run_job(database, manual, settings=settings, poll_seconds=0.05),
        jobs.run_job(database, scheduled, settings=settings, poll_seconds=0.05),
    )

    assert {first.status, second.status} == {"completed"}
    assert first.processed + second.processed == 15
    assert destination.received_count == destination.accepted_count == 15


@pytest.mark.anyio
async def test_only_one_job_of_an_integration_holds_its_run_lock(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer
) -> None:
    integration = await _integration(database, settings, source, destination)
    job_a, job_b = await make_job(database, integration), await make_job(database, integration)

    held = await asyncio.gather(jobs.start_job(database, job_a), jobs.start_job(database, job_b))

    assert sorted(held) == [False, True]
    winner = job_a if held[0] else job_b
    assert await jobs.start_job(database, winner) is True  # taking it again is harmless
    with pytest.raises(jobs.IntegrationBusy):
        await jobs.process_page(database, job_b if winner == job_a else job_a, 0, settings=settings)
    await jobs.finish_job(database, winner, settings=settings)
    assert await jobs.start_job(database, job_b if winner == job_a else job_a) is True


@pytest.mark.anyio
async def test_a_page_is_recorded_once_however_often_its_step_runs(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer
) -> None:
    source.add(*valid_unique_examples(8))
    integration = await _integration(database, settings, source, destination, page_size=4)
    job_id = await make_job(database, integration)
    assert await jobs.start_job(database, job_id)

    first, concurrent = await asyncio.gather(
        jobs.process_page(database, job_id, 0, settings=settings),
        jobs.process_page(database, job_id, 0, settings=settings),
    )
    again = await jobs.process_page(database, job_id, 0, settings=settings)

    results = sorted([first, concurrent], key=lambda r: r.replayed)
    assert (results[0].replayed, results[1].replayed, again.replayed) == (False, True, True)
    assert results[0].sent == results[1].sent == again.sent == 4
    assert destination.accepted_count == 4
    assert all(len(keys) == 1 for keys in _keys_per_invoice(destination).values())
    second = await jobs.process_page(database, job_id, 1, settings=settings)
    end = await jobs.process_page(database, job_id, 2, settings=settings)
    summary = await jobs.finish_job(database, job_id, settings=settings)
    assert (second.sent, end.fetched, end.more) == (4, 0, False)
    assert (summary.status, summary.total, summary.processed) == ("completed", 8, 8)
    assert (await jobs.finish_job(database, job_id, settings=settings)) == summary  # finishing twice: same


class _CrashingDestination:
    """Pushes `allowed` documents through the real destination, then dies like a killed process would."""

    def __init__(self, real: Destination, allowed: int) -> None:
        self.real = real
        self.allowed = allowed

    async def push(
        self, document: bytes, *, idempotency_key: str, filename: str, content_type: str = "application/xml"
    ) -> PushResult:
        if self.allowed <= 0:
            raise RuntimeError("process died")
        self.allowed -= 1
        return await self.real.push(document, idempotency_key=idempotency_key, filename=filename)

    async def aclose(self) -> None:
        await self.real.aclose()


@pytest.mark.anyio
async def test_after_a_crash_mid_page_only_the_unfinished_pushes_are_repeated_with_their_keys(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer
) -> None:
    source.add(*valid_unique_examples(6))
    integration = await _integration(database, settings, source, destination, page_size=6, dest={"max_concurrency": 1})
    job_id = await make_job(database, integration)
    real = jobs.default_connectors(database, settings)

    def crashing(row: Integration) -> tuple[Source, Destination]:
        source_connector, destination_connector = real(row)
        return source_connector, _CrashingDestination(destination_connector, allowed=2)

    assert await jobs.start_job(database, job_id)
    with pytest.raises(RuntimeError, match="process died"):
        await jobs.process_page(database, job_id, 0, settings=settings, connectors=crashing)
    await jobs.close_connectors(job_id)
    assert destination.accepted_count == 2

    summary = await jobs.run_job(database, job_id, settings=settings)

    assert (summary.status, summary.total, summary.processed, summary.duplicates) == ("completed", 6, 6, 0)
    assert destination.accepted_count == 6
    keys = _keys_per_invoice(destination)
    assert all(len(k) == 1 for k in keys.values())


@pytest.mark.anyio
async def test_force_resends_what_was_sent_and_invoice_ids_limit_a_run(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer, db: Engine
) -> None:
    documents = valid_unique_examples(6)
    _source_id, fmt, body = documents[1]
    changed = ("changed", fmt, body + "\n<!-- revised -->\n")  # the same invoice, other content
    source.add(*documents)
    integration = await _integration(database, settings, source, destination, page_size=4)
    await jobs.run_job(database, await make_job(database, integration), settings=settings)
    cursor_after_first = await _cursor(database, integration.id)

    # A limited run: only the named documents, the integration's cursor left where it was.
    limited = await jobs.run_job(
        database, await make_job(database, integration, invoice_ids=[documents[2][0], "absent"]), settings=settings
    )
    assert (limited.total, limited.duplicates, limited.processed) == (1, 1, 0)
    assert await _cursor(database, integration.id) == cursor_after_first

    # Forced: sent again, under a new Idempotency-Key (this destination still refuses a second copy: 409).
    forced = await jobs.run_job(
        database, await make_job(database, integration, force=True, invoice_ids=[documents[2][0]]), settings=settings
    )
    assert (forced.total, forced.duplicates) == (1, 1)
    resent = [r for r in destination.received if r.body == documents[2][2].encode()]
    assert len(resent) == 2
    assert resent[0].key != resent[1].key

    # Changed content under a number already sent: flagged, not sent; forced: sent.
    source.add(changed)
    flagged = await jobs.run_job(database, await make_job(database, integration), settings=settings)
    assert (flagged.total, flagged.changed, flagged.status) == (1, 1, "completed_with_errors")
    before = destination.received_count
    await jobs.run_job(
        database, await make_job(database, integration, force=True, invoice_ids=["changed"]), settings=settings
    )
    assert destination.received_count == before + 1


async def _cursor(database: Database, integration_id: uuid.UUID) -> str | None:
    async with database.read_sessions() as session:
        row = await session.get(Integration, integration_id)
        assert row is not None
        return row.cursor


@pytest.mark.anyio
async def test_a_job_without_reachable_source_fails_with_the_partners_error(
    database: Database, settings: Settings, destination: DestinationServer
) -> None:
    with SourceServer(token="another-token") as source:
        integration = await _integration(database, settings, source, destination)
        summary = await jobs.run_job(database, await make_job(database, integration), settings=settings)
    assert summary.status == "failed"
    assert summary.error is not None
    assert "401" in summary.error
    job = await load_job(database, summary.job_id)
    assert job.completed_at is not None
    assert job.started_at is not None


@pytest.mark.anyio
async def test_scheduled_runs_are_queued_once_per_local_scheduled_time(
    database: Database, settings: Settings, source: SourceServer, destination: DestinationServer
) -> None:
    integration = await _integration(
        database, settings, source, destination, schedule="0 2 * * *", timezone="Europe/Brussels"
    )
    async with database.write_sessions() as session:
        row = await session.get(Integration, integration.id)
        assert row is not None
        row.created_at = datetime(2026, 1, 1, tzinfo=UTC)
        await session.commit()

    async def tick(at: str) -> list[str]:
        async with database.write_sessions() as session:
            created = await jobs.create_scheduled_jobs(session, datetime.fromisoformat(at))
            await session.commit()
            return [job.trigger for job in created]

    # The night the clocks go back, 02:00 Brussels happens at 00:00 and at 01:00 UTC: one run.
    assert await tick("2026-10-25T00:01:00+00:00") == ["schedule:2026-10-25T02:00"]
    assert await tick("2026-10-25T00:30:00+00:00") == []
    assert await tick("2026-10-25T01:05:00+00:00") == []
    # An ordinary night, within the grace period; a scheduler that woke up too late skips the run.
    assert await tick("2026-11-02T01:20:00+00:00") == ["schedule:2026-11-02T02:00"]
    assert await tick("2026-11-03T04:00:00+00:00") == []
    async with database.write_sessions() as session:
        row = await session.get(Integration, integration.id)
        assert row is not None
        row.enabled = False
        await session.commit()
    assert await tick("2026-11-04T01:00:00+00:00") == []
