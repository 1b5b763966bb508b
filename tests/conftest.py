"""Test fixtures: the same API suite runs on SQLite (embedded mode) and PostgreSQL (scale-out mode).

Schemas are built by the Alembic migrations. Between tests every table is emptied.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from invoiceflow.core.db import Base, sync_url
from invoiceflow.core.migrate import upgrade
from invoiceflow.core.settings import Settings
from invoiceflow.integrations.router import JOB_LAUNCHER
from invoiceflow.main import create_app
from invoiceflow.models import load_all

load_all()

PG_ADMIN_URL = os.environ.get("INVOICEFLOW_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("INVOICEFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE = os.environ.get("INVOICEFLOW_TEST_REQUIRE_SERVICES", os.environ.get("CI", "false")).lower() == "true"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def need_service(name: str, port: int) -> None:
    if port_open(port):
        return
    if REQUIRE:
        pytest.fail(f"{name} is not reachable on 127.0.0.1:{port} (CI requires it)")
    pytest.skip(f"{name} not running on 127.0.0.1:{port}")


def pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


def create_pg_database(name: str) -> str:
    admin = create_engine(sync_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return pg_url(name)


def drop_pg_database(name: str) -> None:
    admin = create_engine(sync_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of each kind, shared by the tests of a session."""
    if request.param == "sqlite":
        url = f"sqlite:///{(tmp_path_factory.mktemp('sqlite') / 'test.db').as_posix()}"
        upgrade(url)
        yield url
        return
    need_service("PostgreSQL", 5432)
    name = f"invoiceflow_test_{os.getpid()}"
    url = create_pg_database(name)
    upgrade(url)
    yield url
    drop_pg_database(name)


@pytest.fixture(scope="session")
def sync_engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(sync_url(database_url))
    yield engine
    engine.dispose()


def _empty_tables(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": "test-secret-key-" + "x" * 32,
        "environment": "test",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        # DBOS is one per process: only the workflow tests launch it (tests/workflows).
        "run_workflows": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def app_settings(database_url: str, data_dir: Path) -> Settings:
    return make_settings(database_url, data_dir)


@pytest.fixture(scope="session")
def _session_client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as client:
        # This app runs no workflows (run_workflows=False): integration jobs take the in-process fallback
        # instead of waiting in a queue nobody serves. tests/workflows run them as DBOS workflows.
        client.app.state.runtime.extras.pop(JOB_LAUNCHER)  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def client(_session_client: TestClient, sync_engine: Engine) -> TestClient:
    """A client against an empty database (and fresh in-memory rate-limit counters)."""
    _empty_tables(sync_engine)
    runtime = _session_client.app.state.runtime  # type: ignore[attr-defined]
    from invoiceflow.core.ratelimit import MemoryLimiter

    if isinstance(runtime.limiter, MemoryLimiter):
        runtime.limiter = MemoryLimiter()
    _session_client.headers.clear()
    _session_client.cookies.clear()
    return _session_client


@pytest.fixture
def db(sync_engine: Engine) -> Engine:
    """Direct database access for assertions on rows."""
    return sync_engine


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
