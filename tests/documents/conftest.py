from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.s3server import run_s3_server, s3_client


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One local S3 server for the session; each test works in a bucket of its own."""
    with run_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    """A boto3 client on the local S3 server, for arranging and inspecting (not the code under test)."""
    return s3_client(s3_endpoint)
