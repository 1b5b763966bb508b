"""The `documents` table, as migration 0002 builds it on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, delete, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError

from invoiceflow.core.db import configure_sqlite, sync_url
from invoiceflow.core.migrate import downgrade, upgrade
from invoiceflow.documents.models import Document
from invoiceflow.invoices.models import Invoice
from tests.conftest import create_pg_database, drop_pg_database, need_service
from tests.factories import create_client, create_invoice, register

SHA = "ab" * 32


def document_row(organization_id: str, invoice_id: str | None, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "organization_id": uuid.UUID(organization_id),
        "invoice_id": uuid.UUID(invoice_id) if invoice_id else None,
        "kind": "invoice",
        "format": "pdf",
        "storage_key": f"orgs/{organization_id}/invoices/{invoice_id}/invoice-{SHA[:16]}.pdf",
        "content_type": "application/pdf",
        "sha256": SHA,
        "size_bytes": 12_345_678_901,  # beyond 32 bits: BIGINT on PostgreSQL
        "template_version": "1",
        "source_checksum": SHA,
        "created_at": datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
    }
    values.update(overrides)
    return values


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    """Connections set up like the application's: on SQLite too, foreign keys and cascades are enforced."""
    engine = create_engine(sync_url(database_url))
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine, immediate=True)
    yield engine
    engine.dispose()


@pytest.fixture
def invoice(client: TestClient) -> tuple[str, str]:
    """(organization id, invoice id) of a fresh invoice, in an otherwise empty database."""
    account = register(client)
    customer = create_client(client, account)
    created = create_invoice(client, account, customer["id"])
    return account.organization_id, created["id"]


def test_the_table_has_its_constraints_and_index(engine: Engine) -> None:
    schema = inspect(engine)

    assert {c["name"] for c in schema.get_columns("documents")} == {
        "id",
        "organization_id",
        "invoice_id",
        "kind",
        "format",
        "storage_key",
        "content_type",
        "sha256",
        "size_bytes",
        "template_version",
        "source_checksum",
        "created_at",
    }
    unique = {u["name"]: u["column_names"] for u in schema.get_unique_constraints("documents")}
    assert unique == {"uq_documents_invoice_kind_format": ["invoice_id", "kind", "format"]}
    indexes = {i["name"]: i["column_names"] for i in schema.get_indexes("documents") if not i.get("unique")}
    assert indexes["ix_documents_organization_id"] == ["organization_id"]
    foreign = {tuple(fk["constrained_columns"]): fk for fk in schema.get_foreign_keys("documents")}
    assert foreign[("organization_id",)]["referred_table"] == "organizations"
    assert foreign[("invoice_id",)]["referred_table"] == "invoices"
    assert all(fk["options"].get("ondelete") == "CASCADE" for fk in foreign.values())


def test_one_current_document_per_invoice_kind_and_format(engine: Engine, invoice: tuple[str, str]) -> None:
    org_id, invoice_id = invoice
    with engine.begin() as conn:
        conn.execute(insert(Document), [document_row(org_id, invoice_id)])
        # Another format or kind of the same invoice is another document.
        conn.execute(insert(Document), [document_row(org_id, invoice_id, format="xlsx")])
        conn.execute(insert(Document), [document_row(org_id, invoice_id, kind="credit_note")])

    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(Document), [document_row(org_id, invoice_id, storage_key="orgs/x/second.pdf")])

    with engine.connect() as conn:
        assert conn.execute(select(Document.kind, Document.format).order_by(Document.kind, Document.format)).all() == [
            ("credit_note", "pdf"),
            ("invoice", "pdf"),
            ("invoice", "xlsx"),
        ]


def test_a_re_render_updates_the_row_in_place(engine: Engine, invoice: tuple[str, str]) -> None:
    org_id, invoice_id = invoice
    row = document_row(org_id, invoice_id)
    with engine.begin() as conn:
        conn.execute(insert(Document), [row])
        conn.execute(
            update(Document)
            .where(Document.invoice_id == row["invoice_id"], Document.kind == "invoice", Document.format == "pdf")
            .values(storage_key="orgs/x/new.pdf", sha256="cd" * 32, size_bytes=10)
        )

    with engine.connect() as conn:
        stored = conn.execute(select(Document)).one()
    assert (stored.id, stored.storage_key, stored.size_bytes) == (row["id"], "orgs/x/new.pdf", 10)
    assert stored.created_at == row["created_at"]
    assert stored.created_at.tzinfo is not None


def test_uploads_without_an_invoice_are_not_limited(engine: Engine, invoice: tuple[str, str]) -> None:
    org_id, _ = invoice
    with engine.begin() as conn:
        conn.execute(
            insert(Document),
            [document_row(org_id, None, kind="upload", format="ubl", template_version=None) for _ in range(3)],
        )

    with engine.connect() as conn:
        assert len(conn.execute(select(Document.id).where(Document.invoice_id.is_(None))).all()) == 3


def test_deleting_an_invoice_deletes_its_documents(engine: Engine, invoice: tuple[str, str]) -> None:
    org_id, invoice_id = invoice
    with engine.begin() as conn:
        conn.execute(insert(Document), [document_row(org_id, invoice_id)])
        conn.execute(insert(Document), [document_row(org_id, None, kind="upload")])

    with engine.begin() as conn:
        conn.execute(delete(Invoice).where(Invoice.id == uuid.UUID(invoice_id)))

    with engine.connect() as conn:
        assert conn.execute(select(Document.kind)).scalars().all() == ["upload"]


def test_a_document_must_belong_to_an_existing_invoice(engine: Engine, invoice: tuple[str, str]) -> None:
    org_id, _ = invoice
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(Document), [document_row(org_id, str(uuid.uuid4()))])


# --- the migration itself, on a database of its own ------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: this test moves it between revisions, which the shared one must not see."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'documents-migration.db').as_posix()}"
        return
    need_service("PostgreSQL", 5432)
    name = f"invoiceflow_docs_{uuid.uuid4().hex[:12]}"
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migration_0002_upgrades_and_downgrades_cleanly(fresh_url: str) -> None:
    upgrade(fresh_url, "0001")
    before = _tables(fresh_url)
    assert "documents" not in before

    upgrade(fresh_url, "0002")
    assert _tables(fresh_url) == before | {"documents"}

    downgrade(fresh_url, "0001")
    assert _tables(fresh_url) == before

    upgrade(fresh_url, "0002")
    assert "documents" in _tables(fresh_url)
