"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi.testclient import TestClient

from invoiceflow.core.db import Database


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database(database_url: str, client: TestClient) -> AsyncIterator[Database]:
    """The application's engines, on a database emptied by the `client` fixture."""
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()
