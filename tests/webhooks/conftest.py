"""Webhook test fixtures: the application's database for async calls, and an app that allows private
networks (the local receivers listen on loopback), sharing the session's database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from invoiceflow.core.db import Database
from invoiceflow.main import create_app
from tests.conftest import make_settings, need_service


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def exchange_name() -> str:
    """A fresh topic exchange name on the local RabbitMQ (the tests delete it afterwards)."""
    need_service("RabbitMQ", 5672)
    return f"invoiceflow.test.{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def database(database_url: str, client: TestClient) -> AsyncIterator[Database]:
    """The application's engines, on a database emptied by the `client` fixture."""
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def _private_app_client(database_url: str, data_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(database_url, data_dir, webhook_allow_private_networks=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as private:
        yield private


@pytest.fixture
def private_client(_private_app_client: TestClient, client: TestClient) -> TestClient:
    """Like `client` (same database, emptied), but webhook URLs on loopback are allowed."""
    _private_app_client.headers.clear()
    return _private_app_client
