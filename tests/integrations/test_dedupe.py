"""Deduplication: the identity read from the tree is the import's, decisions are by number and content, and
the ledger answers a page in one query."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import event

from invoiceflow.core.db import Database, utcnow
from invoiceflow.einvoicing.importer import parse_einvoice
from invoiceflow.einvoicing.xmlsafe import parse_xml
from invoiceflow.integrations.dedupe import (
    Identity,
    NoIdentity,
    Sent,
    decide,
    destination_key,
    idempotency_key,
    identity_of,
    lookup_sent,
)
from invoiceflow.integrations.models import SentRecord
from tests.integrations.helpers import examples, make_org


@pytest.mark.parametrize("document", examples(), ids=lambda d: d[0])
def test_the_identity_is_the_one_the_import_gives(document: tuple[str, str, str]) -> None:
    body = document[2].encode()
    parsed = parse_einvoice(body)
    assert identity_of(parse_xml(body)) == Identity(parsed.supplier_key(), parsed.document.number)


def test_a_document_without_seller_or_number_has_no_identity() -> None:
    body = next(doc for doc in examples() if doc[0] == "ubl/peppol__base-example.xml")[2]
    without_number = re.sub(r"<cbc:ID>[^<]*</cbc:ID>", "", body, count=1)
    with pytest.raises(NoIdentity):
        identity_of(parse_xml(without_number.encode()))
    with pytest.raises(NoIdentity):
        identity_of(parse_xml(b"<order xmlns='urn:example'/>"))


A, B = Identity("vat:NL1", "2026-1"), Identity("vat:NL1", "2026-2")


def test_never_sent_is_sent_same_content_is_a_duplicate_other_content_is_changed() -> None:
    sent = {A: Sent("aaa", "r1")}
    assert decide([(A, "aaa"), (A, "bbb"), (B, "ccc")], sent, force=False) == [
        ("duplicate", "aaa"),
        ("changed", "aaa"),
        ("send", None),
    ]


def test_copies_within_one_batch_count_as_sent_by_the_first() -> None:
    assert decide([(B, "x"), (B, "x"), (B, "y")], {}, force=False) == [
        ("send", None),
        ("duplicate", "x"),
        ("changed", "x"),
    ]


def test_force_sends_changed_and_already_sent_invoices_but_one_copy_per_batch() -> None:
    sent = {A: Sent("aaa", None)}
    assert decide([(A, "aaa"), (A, "bbb"), (A, "bbb")], sent, force=True) == [
        ("send", "aaa"),
        ("send", "aaa"),
        ("duplicate", "bbb"),
    ]


def test_keys_are_derived_from_destination_invoice_and_content() -> None:
    org = uuid.uuid4()
    dest = destination_key(org, {"type": "http", "url": "https://books.example/api"})
    assert dest == destination_key(org, {"type": "http", "url": "https://books.example/api", "max_attempts": 3})
    assert dest != destination_key(uuid.uuid4(), {"type": "http", "url": "https://books.example/api"})
    assert dest != destination_key(org, {"type": "http", "url": "https://other.example/api"})
    key = idempotency_key(dest, A, "aaa", force_job=None)
    assert key == idempotency_key(dest, A, "aaa", force_job=None)
    assert key != idempotency_key(dest, A, "bbb", force_job=None)
    job = uuid.uuid4()
    forced = idempotency_key(dest, A, "aaa", force_job=job)
    assert forced not in (key, idempotency_key(dest, A, "aaa", force_job=uuid.uuid4()))
    assert forced == idempotency_key(dest, A, "aaa", force_job=job)  # a resumed forced job: the same key
    assert len(key) <= 100
    assert key.isascii()
    assert key.isprintable()


@pytest.mark.anyio
async def test_a_page_is_looked_up_in_one_query(database: Database) -> None:
    org = await make_org(database)
    dest, other = uuid.uuid4(), uuid.uuid4()
    rows = [
        SentRecord(
            destination_key=key,
            supplier_key=f"vat:S{n % 7}",
            invoice_number=f"N-{n}",
            organization_id=org,
            document_sha256=f"{n:064d}",
            sent_at=utcnow(),
        )
        for key in (dest, other)
        for n in range(300)
    ]
    async with database.write_sessions() as session:
        session.add_all(rows)
        await session.commit()
    page = [Identity(f"vat:S{n % 7}", f"N-{n}") for n in range(250, 350)]  # 50 sent, 50 not

    statements: list[str] = []
    async with database.read_sessions() as session:
        engine = session.bind.sync_engine  # type: ignore[union-attr]

        def count(*args: object) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            found = await lookup_sent(session, dest, page)
        finally:
            event.remove(engine, "before_cursor_execute", count)

    assert len([s for s in statements if "sent_records" in s]) == 1
    assert set(found) == {Identity(f"vat:S{n % 7}", f"N-{n}") for n in range(250, 300)}
    assert found[Identity("vat:S5", "N-257")].document_sha256 == f"{257:064d}"
    async with database.read_sessions() as session:
        assert await lookup_sent(session, uuid.uuid4(), page) == {}
        assert await lookup_sent(session, dest, []) == {}


@pytest.mark.anyio
async def test_worker_processes_check_documents_as_a_thread_does() -> None:
    """The benchmark's path (validation in a process pool) gives the same verdicts as the tests' (a thread)."""
    from invoiceflow.integrations.validation import DocumentChecker, shutdown_pools
    from tests.integrations.helpers import RULES_DIR

    chosen = [
        doc
        for doc in examples()
        if doc[0].startswith(("ubl/en16931__issue116", "ubl/peppol__base", "cii/en16931__CII_example1"))
    ]
    bodies = [doc[2].encode() for doc in chosen] + [b"<not xml"]
    try:
        in_processes = await DocumentChecker(RULES_DIR, 1).check(bodies)
    finally:
        shutdown_pools()
    assert in_processes == await DocumentChecker(RULES_DIR, 0).check(bodies)
    assert [c.valid for c in in_processes].count(False) == 2
    assert in_processes[-1].rule_ids == ("XML-UNREADABLE",)
