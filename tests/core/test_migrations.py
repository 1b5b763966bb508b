"""The Alembic migrations build exactly the schema the models describe, on both backends, both ways."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from invoiceflow.core.db import Base, sync_url
from invoiceflow.core.migrate import DBOS_SQLITE_TABLES, downgrade, upgrade
from tests.conftest import create_pg_database, drop_pg_database, need_service


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, not the session's shared one: these tests migrate it up and down."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'fresh' / 'migrations.db').as_posix()}"
        return
    need_service("PostgreSQL", 5432)
    name = f"invoiceflow_mig_{uuid.uuid4().hex[:12]}"
    url = create_pg_database(name)
    try:
        yield url
    finally:
        drop_pg_database(name)


def _tables(url: str) -> set[str]:
    """Our tables: DBOS's system tables share the SQLite file (on PostgreSQL they are in schema `dbos`)."""
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names()) - DBOS_SQLITE_TABLES
    finally:
        engine.dispose()


def _ours(name: str | None, type_: str, _parent: object) -> bool:
    return not (type_ == "table" and name in DBOS_SQLITE_TABLES)


def _schema_diff(url: str) -> list[object]:
    """What `alembic check` reports: differences between the models and the migrated schema."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True, "include_name": _ours}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_models_cover_the_domains() -> None:
    # Guards the comparisons below against an incomplete metadata (models.load_all ran in conftest).
    assert {"organizations", "users", "clients", "orders", "invoices", "invoice_lines", "number_sequences"} <= set(
        Base.metadata.tables
    )


def test_upgrade_builds_every_model_table_and_nothing_differs(fresh_url: str) -> None:
    upgrade(fresh_url)
    assert _tables(fresh_url) == set(Base.metadata.tables) | {"alembic_version"}
    assert _schema_diff(fresh_url) == []
    # Upgrading an up-to-date database is a no-op (`serve` and `demo-data` upgrade on every start).
    upgrade(fresh_url)
    assert _schema_diff(fresh_url) == []


def test_downgrade_to_base_then_upgrade_again(fresh_url: str) -> None:
    upgrade(fresh_url)
    downgrade(fresh_url, "base")
    assert _tables(fresh_url) <= {"alembic_version"}
    upgrade(fresh_url)
    assert _tables(fresh_url) == set(Base.metadata.tables) | {"alembic_version"}
    assert _schema_diff(fresh_url) == []


def test_concurrent_upgrades_of_a_fresh_database_all_succeed(fresh_url: str) -> None:
    """Several processes starting at once (`serve` on several machines) must not race each other's DDL."""
    code = f"from invoiceflow.core.migrate import upgrade; upgrade({fresh_url!r})"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(outputs)
    assert _tables(fresh_url) == set(Base.metadata.tables) | {"alembic_version"}
    assert _schema_diff(fresh_url) == []
