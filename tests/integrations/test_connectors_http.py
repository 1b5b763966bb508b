"""The HTTP connectors against the fake partner servers (real sockets, real httpx): paging, auth, malformed pages,
every fault kind with its retries, Retry-After, the circuit breaker, duplicates, rejections and the limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from invoiceflow.integrations.connectors import (
    ConnectorConfigError,
    Destination,
    ExternalApiError,
    Source,
    make_destination,
    make_source,
)
from invoiceflow.integrations.connectors.http import HttpDestination
from invoiceflow.integrations.resilience import LimiterRegistry
from tests.einvoicing.conftest import locate_rules_dir
from tests.integrations.partners import (
    DEFAULT_DESTINATION_TOKEN,
    DEFAULT_SOURCE_TOKEN,
    DestinationServer,
    Document,
    Fault,
    SourceServer,
    example_documents,
    invoice_identity,
)

pytestmark = pytest.mark.anyio

FAST = {"timeout_seconds": 0.3, "retry_base_delay_seconds": 0.01, "retry_max_delay_seconds": 0.05}


@pytest.fixture(scope="module")
def examples() -> list[Document]:
    examples_dir = locate_rules_dir() / "examples"
    if not examples_dir.is_dir():
        pytest.skip(f"e-invoicing examples not found at {examples_dir}")
    return example_documents(examples_dir)


@pytest.fixture(scope="module")
def invoice(examples: list[Document]) -> bytes:
    return {doc_id: text for doc_id, _, text in examples}["ubl/peppol__base-example.xml"].encode()


@pytest.fixture
def destination_server() -> Iterator[DestinationServer]:
    with DestinationServer() as server:
        yield server


def source_for(server: SourceServer, *, token: str = DEFAULT_SOURCE_TOKEN, **config: Any) -> Source:
    return make_source({"type": "http", "url": server.url, **FAST, **config}, {"bearer_token": token})


@pytest.fixture
async def destination(destination_server: DestinationServer) -> AsyncIterator[Destination]:
    dest = destination_for(destination_server)
    yield dest
    await dest.aclose()


def destination_for(server: DestinationServer, registry: LimiterRegistry | None = None, **config: Any) -> Destination:
    secrets = {"bearer_token": DEFAULT_DESTINATION_TOKEN}
    return make_destination({"type": "http", "url": server.url, **FAST, **config}, secrets, limiter_registry=registry)


def calls(result: str, operation: str = "push") -> float:
    labels = {"service": "http", "operation": operation, "result": result}
    return REGISTRY.get_sample_value("external_api_calls_total", labels) or 0.0


# --------------------------------------------------------------------------------------------- source


async def test_the_examples_page_through_to_the_end_and_resume_from_a_cursor(examples: list[Document]) -> None:
    with SourceServer(examples) as server:
        source = source_for(server, page_size=10)
        try:
            seen: list[tuple[str, str, bytes]] = []
            cursors: list[str | None] = []
            cursor: str | None = None
            while True:
                page = await source.fetch_page(cursor, 25)  # capped to the configured page_size
                assert len(page.documents) <= 10
                if not page.documents:
                    assert page.next_cursor == cursor  # caught up: the cursor stays
                    break
                seen += [(d.source_id, d.format, d.content) for d in page.documents]
                cursor = page.next_cursor
                cursors.append(cursor)
            assert seen == [(doc_id, fmt, text.encode()) for doc_id, fmt, text in examples]
            assert server.request_count == 7  # 6 pages of at most 10, then the empty one
            assert [limit for _, limit, _ in server.requests] == [10] * 7

            resumed = await source.fetch_page(cursors[2], 100)  # a job restarting after its third recorded page
            assert [d.source_id for d in resumed.documents][:3] == [doc_id for doc_id, _, _ in examples[30:33]]
            assert len(resumed.documents) == 10

            server.add(("late-1", "ubl", examples[0][2]))
            late = await source.fetch_page(cursor, 10)
            assert [d.source_id for d in late.documents] == ["late-1"]
        finally:
            await source.aclose()


async def test_the_source_sends_an_api_key_header_when_configured(examples: list[Document]) -> None:
    with SourceServer(examples[:3], token="k-123", api_key_header="X-Partner-Key") as server:
        source = make_source(
            {"type": "http", "url": server.url, "api_key_header": "X-Partner-Key", **FAST}, {"api_key": "k-123"}
        )
        try:
            page = await source.fetch_page(None, 10)
        finally:
            await source.aclose()
    assert len(page.documents) == 3


async def test_refused_credentials_fail_at_once_without_retries(examples: list[Document]) -> None:
    with SourceServer(examples[:3]) as server:
        source = source_for(server, token="wrong")
        try:
            with pytest.raises(ExternalApiError) as caught:
                await source.fetch_page(None, 10)
        finally:
            await source.aclose()
    error = caught.value
    assert (error.upstream_status, error.retry_count, error.retryable, error.next_retry_at) == (401, 0, False, None)
    assert "refused the credentials" in error.message
    assert server.request_count == 1


async def test_a_flaky_source_is_retried(examples: list[Document]) -> None:
    faults = {1: Fault.unavailable(), 2: Fault.drop(), 3: Fault.timeout(1.0), 4: Fault.rate_limited(0)}
    with SourceServer(examples[:5], faults=faults) as server:
        source = source_for(server)
        try:
            page = await source.fetch_page(None, 10)
        finally:
            await source.aclose()
    assert len(page.documents) == 5
    assert server.request_count == 5


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html>oops</html>", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"invoices": {"id": "1"}}', '"invoices" is not a list'),
        ('{"invoices": ["x"], "next_cursor": "c"}', "invoices[0] is not an object"),
        ('{"invoices": [{"id": null, "format": "ubl", "document": "<a/>"}], "next_cursor": "c"}', "id"),
        ('{"invoices": [{"id": "1", "format": "pdf", "document": "<a/>"}], "next_cursor": "c"}', "format"),
        ('{"invoices": [{"id": "1", "format": "ubl", "document": 5}], "next_cursor": "c"}', "document"),
        ('{"invoices": [{"id": "1", "format": "ubl", "document": "<a/>"}], "next_cursor": 7}', "next_cursor"),
        ('{"invoices": [{"id": "1", "format": "ubl", "document": "<a/>"}]}', "new next_cursor"),
        ('{"invoices": [{"id": "1", "format": "ubl", "document": "<a/>"}], "next_cursor": "c0"}', "new next_cursor"),
        (
            '{"invoices": ['
            + ",".join(f'{{"id": "{n}", "format": "ubl", "document": "<a/>"}}' for n in range(3))
            + "]}",
            "3 invoices for a limit of 2",
        ),
        ('{"invoices": [{"id": "1", "format": "ubl", "document": "' + "x" * 2000 + '"}], "next_cursor": "c"}', "limit"),
    ],
)
async def test_malformed_pages_are_refused_with_a_clear_error(body: str, reason: str) -> None:
    with SourceServer(faults={1: Fault.raw(200, body)}) as server:
        source = source_for(server, max_document_bytes=1024)
        try:
            with pytest.raises(ExternalApiError) as caught:
                await source.fetch_page("c0", 2)
        finally:
            await source.aclose()
    assert reason in caught.value.message
    assert (caught.value.upstream_status, caught.value.retryable) == (200, False)
    assert server.request_count == 1


async def test_a_page_over_the_response_cap_is_refused(examples: list[Document]) -> None:
    with SourceServer(examples[:10]) as server:
        source = source_for(server, max_response_bytes=4096)
        try:
            with pytest.raises(ExternalApiError, match="larger than 4096 bytes"):
                await source.fetch_page(None, 10)
        finally:
            await source.aclose()


# --------------------------------------------------------------------------------------------- destination


async def test_an_accepted_invoice(
    destination: Destination, destination_server: DestinationServer, invoice: bytes
) -> None:
    before = calls("accepted")
    result = await destination.push(invoice, idempotency_key="key-1", filename="Snippet1.xml")
    assert (result.outcome, result.status_code, result.remote_id, result.attempts) == ("accepted", 201, "acc-000001", 1)
    assert result.response == '{"id":"acc-000001"}'
    [received] = destination_server.received
    assert (received.key, received.body, received.status) == ("key-1", invoice, 201)
    assert set(destination_server.accepted) == {invoice_identity(invoice)}
    assert calls("accepted") == before + 1


async def test_duplicates_by_key_and_by_invoice(
    destination: Destination, destination_server: DestinationServer, invoice: bytes
) -> None:
    first = await destination.push(invoice, idempotency_key="key-1", filename="a.xml")
    again = await destination.push(invoice, idempotency_key="key-1", filename="a.xml")
    other_key = await destination.push(invoice, idempotency_key="key-2", filename="a.xml")
    assert first.outcome == "accepted"
    for result in (again, other_key):
        assert (result.outcome, result.status_code, result.remote_id) == ("duplicate", 409, first.remote_id)
    assert (destination_server.accepted_count, destination_server.duplicate_count) == (1, 2)


async def test_a_rejection_keeps_the_partner_answer(
    destination: Destination, destination_server: DestinationServer, invoice: bytes
) -> None:
    destination_server.set_faults(key_faults={"key-1": [Fault.reject(422, '{"error": "BR-CO-15 ' + "x" * 3000 + '"}')]})
    rejected = await destination.push(invoice, idempotency_key="key-1", filename="a.xml")
    assert (rejected.outcome, rejected.status_code, rejected.remote_id, rejected.attempts) == ("rejected", 422, None, 1)
    assert rejected.response.startswith('{"error": "BR-CO-15 xxx')
    assert len(rejected.response) == 2000

    not_an_invoice = await destination.push(b"<Note/>", idempotency_key="key-2", filename="a.xml")
    assert (not_an_invoice.outcome, not_an_invoice.status_code) == ("rejected", 400)
    assert "not a UBL or CII invoice" in not_an_invoice.response
    assert destination_server.accepted_count == 0


@pytest.mark.parametrize(
    ("fault", "attempts"),
    [
        (Fault.unavailable(503), 2),
        (Fault.unavailable(500), 2),
        (Fault.rate_limited(0), 2),
        (Fault.rate_limited(None), 2),
        (Fault.timeout(1.0), 2),
        (Fault.drop(), 2),
        (Fault.slow(0.1), 1),
    ],
    ids=["503", "500", "429", "429-no-retry-after", "timeout", "dropped", "slow"],
)
async def test_each_fault_kind_is_survived(
    destination: Destination, destination_server: DestinationServer, invoice: bytes, fault: Fault, attempts: int
) -> None:
    destination_server.set_faults({1: fault})
    result = await destination.push(invoice, idempotency_key="key-1", filename="a.xml")
    assert (result.outcome, result.attempts) == ("accepted", attempts)
    assert destination_server.received_count == attempts
    assert destination_server.by_key["key-1"] == [invoice] * attempts
    assert destination_server.accepted_count == 1


async def test_an_answer_lost_after_acceptance_comes_back_as_a_duplicate(
    destination: Destination, destination_server: DestinationServer, invoice: bytes
) -> None:
    destination_server.set_faults({1: Fault.drop(after_accept=True), 3: Fault.timeout(1.0, after_accept=True)})
    dropped = await destination.push(invoice, idempotency_key="key-1", filename="a.xml")
    assert (dropped.outcome, dropped.attempts, dropped.remote_id) == ("duplicate", 2, "acc-000001")
    assert destination_server.accepted_count == 1


async def test_giving_up_reports_the_details(destination_server: DestinationServer, invoice: bytes) -> None:
    destination_server.set_faults(lambda number, key: Fault.unavailable(502))
    dest = destination_for(destination_server, max_attempts=3)
    try:
        with pytest.raises(ExternalApiError) as caught:
            await dest.push(invoice, idempotency_key="key-1", filename="a.xml")
    finally:
        await dest.aclose()
    error = caught.value
    assert destination_server.received_count == 3
    assert (error.status_code, error.code, error.retryable) == (503, "EXTERNAL_API_ERROR", True)
    assert error.details["api_endpoint"] == f"{destination_server.url}/invoices"
    assert (error.details["status_code"], error.details["retry_count"]) == (502, 2)
    assert error.next_retry_at is not None
    assert datetime.now(UTC) - timedelta(seconds=1) < error.next_retry_at < datetime.now(UTC) + timedelta(seconds=1)
    assert error.details["next_retry_at"].endswith("Z")
    assert "Retry-After" in error.headers


async def test_retry_after_is_honoured_in_both_forms(
    destination: Destination, destination_server: DestinationServer, invoice: bytes
) -> None:
    destination_server.set_faults({1: Fault.rate_limited(1)})
    started = time.monotonic()
    assert (await destination.push(invoice, idempotency_key="k1", filename="a.xml")).attempts == 2
    assert time.monotonic() - started >= 0.95

    destination_server.reset()
    in_two_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)  # whole seconds
    destination_server.set_faults({1: Fault.rate_limited(in_two_seconds)})
    started = time.monotonic()
    assert (await destination.push(invoice, idempotency_key="k2", filename="a.xml")).attempts == 2
    assert time.monotonic() - started >= 0.95


async def test_an_excessive_retry_after_is_reported_not_slept(
    destination_server: DestinationServer, invoice: bytes
) -> None:
    destination_server.set_faults({1: Fault.rate_limited(3600)})
    dest = destination_for(destination_server, max_retry_after_seconds=60)
    try:
        with pytest.raises(ExternalApiError) as caught:
            await dest.push(invoice, idempotency_key="k1", filename="a.xml")
    finally:
        await dest.aclose()
    assert (caught.value.retry_count, caught.value.upstream_status) == (0, 429)
    assert caught.value.next_retry_at is not None
    assert caught.value.next_retry_at > datetime.now(UTC) + timedelta(minutes=59)
    assert destination_server.received_count == 1


async def test_the_circuit_opens_and_recovers(destination_server: DestinationServer, invoice: bytes) -> None:
    destination_server.set_faults(lambda number, key: Fault.unavailable())
    dest = destination_for(destination_server, max_attempts=1, circuit_failure_threshold=3, circuit_reset_seconds=0.3)
    assert isinstance(dest, HttpDestination)
    try:
        for n in range(3):
            with pytest.raises(ExternalApiError, match="gave up after 1 attempts"):
                await dest.push(invoice, idempotency_key=f"k{n}", filename="a.xml")
        assert dest.guard.breaker.state == "open"
        with pytest.raises(ExternalApiError, match="circuit is open") as caught:
            await dest.push(invoice, idempotency_key="k3", filename="a.xml")
        assert destination_server.received_count == 3  # failed fast, nothing sent
        assert caught.value.next_retry_at is not None
        assert caught.value.next_retry_at <= datetime.now(UTC) + timedelta(seconds=0.3)

        destination_server.set_faults(None)
        await asyncio.sleep(0.35)
        result = await dest.push(invoice, idempotency_key="k3", filename="a.xml")  # the half-open probe
        assert result.outcome == "accepted"
        assert dest.guard.breaker.state == "closed"
    finally:
        await dest.aclose()


async def test_refused_credentials_and_redirects_are_errors_not_rejections(
    destination_server: DestinationServer, invoice: bytes
) -> None:
    wrong = make_destination({"type": "http", "url": destination_server.url, **FAST}, {"bearer_token": "nope"})
    moved = Fault("status", status=308, headers=(("Location", "http://elsewhere.example/invoices"),))
    destination_server.set_faults({2: moved})
    right = destination_for(destination_server)
    try:
        with pytest.raises(ExternalApiError, match="refused the credentials") as refused:
            await wrong.push(invoice, idempotency_key="k1", filename="a.xml")
        with pytest.raises(ExternalApiError, match="redirects are not followed") as redirected:
            await right.push(invoice, idempotency_key="k1", filename="a.xml")
    finally:
        await wrong.aclose()
        await right.aclose()
    assert (refused.value.upstream_status, refused.value.retryable) == (401, False)
    assert (redirected.value.upstream_status, redirected.value.retryable) == (308, False)
    assert destination_server.received_count == 2


async def test_the_concurrency_cap_is_respected_by_the_server_count(
    destination_server: DestinationServer, examples: list[Document]
) -> None:
    destination_server.set_faults(lambda number, key: Fault.slow(0.05))
    dest = destination_for(destination_server, max_concurrency=3)
    try:
        results = await asyncio.gather(
            *(
                dest.push(text.encode(), idempotency_key=f"k{n}", filename="a.xml")
                for n, (_, _, text) in enumerate(examples)
            )
        )
    finally:
        await dest.aclose()
    assert destination_server.max_in_flight == 3
    assert {r.outcome for r in results} == {"accepted", "duplicate"}


async def test_destinations_sharing_a_registry_share_the_cap(
    destination_server: DestinationServer, examples: list[Document]
) -> None:
    destination_server.set_faults(lambda number, key: Fault.slow(0.05))
    registry = LimiterRegistry()
    first = destination_for(destination_server, registry, max_concurrency=2)
    second = destination_for(destination_server, registry, max_concurrency=2)
    try:
        await asyncio.gather(
            *(
                (first if n % 2 else second).push(text.encode(), idempotency_key=f"k{n}", filename="a.xml")
                for n, (_, _, text) in enumerate(examples[:12])
            )
        )
    finally:
        await first.aclose()
        await second.aclose()
    assert destination_server.max_in_flight == 2


async def test_the_rate_limit_spaces_requests(destination_server: DestinationServer, examples: list[Document]) -> None:
    dest = destination_for(destination_server, rate_limit_per_second=20, rate_limit_burst=1)
    try:
        await asyncio.gather(
            *(
                dest.push(text.encode(), idempotency_key=f"k{n}", filename="a.xml")
                for n, (_, _, text) in enumerate(examples[:10])
            )
        )
    finally:
        await dest.aclose()
    times = destination_server.request_times
    assert len(times) == 10
    assert times[-1] - times[0] >= 9 / 20 - 0.02


async def test_source_to_destination_moves_every_example_once(
    examples: list[Document], destination_server: DestinationServer
) -> None:
    destination_server.set_faults(
        {3: Fault.unavailable(), 7: Fault.drop(), 11: Fault.rate_limited(0), 15: Fault.timeout(1.0)}
    )
    with SourceServer(examples, page_size=20) as source_server:
        source = source_for(source_server)
        dest = destination_for(destination_server, max_concurrency=4)
        outcomes: dict[str, str] = {}
        try:
            cursor: str | None = None
            while (page := await source.fetch_page(cursor, 20)).documents:
                results = await asyncio.gather(
                    *(
                        dest.push(d.content, idempotency_key=d.source_id.replace("/", "_"), filename=d.source_id)
                        for d in page.documents
                    )
                )
                outcomes.update({d.source_id: r.outcome for d, r in zip(page.documents, results, strict=True)})
                cursor = page.next_cursor
        finally:
            await source.aclose()
            await dest.aclose()
    identities = {invoice_identity(text.encode()) for _, _, text in examples}
    assert len(outcomes) == len(examples)
    assert set(destination_server.accepted) == identities  # several examples share a seller and a number
    assert list(outcomes.values()).count("accepted") == len(identities)
    assert list(outcomes.values()).count("duplicate") == len(examples) - len(identities)


# --------------------------------------------------------------------------------------------- settings


def test_settings_are_checked_and_secrets_never_quoted() -> None:
    with pytest.raises(ConnectorConfigError, match="unknown source type 'ftp'"):
        make_source({"type": "ftp"}, {})
    with pytest.raises(ValueError, match="url"):
        make_source({"type": "http", "url": "ftp://x.example"}, {})
    with pytest.raises(ValueError, match="credentials in the secrets"):
        make_source({"type": "http", "url": "https://user:pw@x.example"}, {})
    with pytest.raises(ConnectorConfigError, match="page_sise") as typo:
        make_source({"type": "http", "url": "https://x.example", "page_sise": 5}, {})
    assert typo.value.errors[0]["field"] == "page_sise"
    with pytest.raises(ConnectorConfigError) as bad_secret:
        make_destination({"type": "http", "url": "https://x.example"}, {"bearer_token": 12345678, "apikey": "s3cr3t"})
    assert "12345678" not in str(bad_secret.value)
    assert "s3cr3t" not in str(bad_secret.value)
    with pytest.raises(ValueError, match="line break"):
        make_destination({"type": "http", "url": "https://x.example"}, {"headers": {"X-Key": "a\r\nInjected: 1"}})


async def test_extra_kinds_are_plugged_in_by_the_caller(destination_server: DestinationServer) -> None:
    made: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def factory(config: dict[str, Any], secrets: dict[str, Any]) -> Destination:
        made.append((config, secrets))
        return destination_for(destination_server)

    dest = make_destination({"type": "invoiceflow", "organization": "x"}, {"k": "v"}, extra={"invoiceflow": factory})
    await dest.aclose()
    assert made == [({"type": "invoiceflow", "organization": "x"}, {"k": "v"})]
    with pytest.raises(ConnectorConfigError, match="known: folder, http, invoiceflow, s3"):
        make_destination({"type": "nope"}, {}, extra={"invoiceflow": factory})


def test_oversized_keys_are_refused_before_sending(tmp_path: Path) -> None:
    dest = make_destination({"type": "folder", "path": str(tmp_path)}, {})
    with pytest.raises(ValueError, match="idempotency_key"):
        asyncio.run(dest.push(b"<a/>", idempotency_key="é" * 3, filename="a.xml"))
