"""An app that runs workflows in-process (embedded mode; on PostgreSQL too), with a real SMTP server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from invoiceflow.main import create_app
from tests.conftest import _empty_tables, make_settings
from tests.notifications.conftest import RecordingHandler, SmtpServer
from tests.servers import free_port


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), RecordingHandler())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def wf_app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, smtp_server: SmtpServer
) -> Iterator[TestClient]:
    """DBOS launched in the test process (one per module: DBOS is a process-wide singleton)."""
    data_dir: Path = tmp_path_factory.mktemp("wf-data")
    settings = make_settings(
        database_url,
        data_dir,
        run_workflows=True,
        executor_id="test-embedded",
        smtp_url=smtp_server.url(),
        smtp_from="Acme Billing <billing@acme.example>",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def wf_client(wf_app: TestClient, sync_engine: Engine, smtp_server: SmtpServer) -> TestClient:
    for attempt in range(3):
        try:
            _empty_tables(sync_engine)
            break
        except OperationalError as exc:
            # PostgreSQL: TRUNCATE locks table after table and can deadlock with the app's event dispatcher,
            # woken by the previous test's last workflow step; one of the two is cancelled, so try again.
            if "deadlock" not in str(exc) or attempt == 2:
                raise
    smtp_server.handler.messages.clear()
    wf_app.headers.clear()
    return wf_app


def wait_for(check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until `check()` returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)
        value = check()
    return value
