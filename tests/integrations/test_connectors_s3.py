"""The S3 connectors against a real local S3 API (moto's server, `tests/s3server.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from invoiceflow.integrations.connectors import ConnectorConfigError, ExternalApiError, make_destination, make_source
from tests.einvoicing.conftest import locate_rules_dir
from tests.s3server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, create_bucket, run_s3_server, s3_client
from tests.servers import free_port

pytestmark = pytest.mark.anyio

EXAMPLES = locate_rules_dir() / "examples"
UBL = EXAMPLES / "ubl" / "peppol__base-example.xml"
CII = EXAMPLES / "cii" / "en16931__CII_example1.xml"
SECRETS = {"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with run_s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    if not UBL.is_file():
        pytest.skip(f"e-invoicing examples not found at {EXAMPLES}")
    return create_bucket(s3)


def settings(endpoint: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "s3",
        "bucket": bucket,
        "prefix": "acme/in",
        "endpoint_url": endpoint,
        "region": REGION,
        "retry_base_delay_seconds": 0.01,
        "retry_max_delay_seconds": 0.05,
        **extra,
    }


async def test_objects_page_by_key_with_start_after(s3_endpoint: str, s3: Any, bucket: str) -> None:
    objects = {
        "acme/in/2026/03/b.xml": UBL.read_bytes(),
        "acme/in/2026/03/a.XML": CII.read_bytes(),
        "acme/in/2026/03/readme.txt": b"skip me",
        "acme/in/2026/04/c.xml": UBL.read_bytes(),
        "acme/in/2026/04/.d.xml": UBL.read_bytes(),
        "acme/other/x.xml": UBL.read_bytes(),
    }
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    source = make_source(settings(s3_endpoint, bucket), SECRETS)
    try:
        first = await source.fetch_page(None, 2)
        assert [(d.source_id, d.format) for d in first.documents] == [
            ("2026/03/a.XML", "cii"),
            ("2026/03/b.xml", "ubl"),
        ]
        assert first.documents[1].content == UBL.read_bytes()
        second = await source.fetch_page(first.next_cursor, 2)
        assert [d.source_id for d in second.documents] == ["2026/04/c.xml"]
        assert second.next_cursor == "2026/04/c.xml"
        done = await source.fetch_page(second.next_cursor, 2)
        assert (done.documents, done.next_cursor) == ([], "2026/04/c.xml")
    finally:
        await source.aclose()


async def test_an_oversized_object_is_an_error(s3_endpoint: str, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="acme/in/big.xml", Body=b"<a>" + b"x" * 5000 + b"</a>")
    source = make_source(settings(s3_endpoint, bucket, max_document_bytes=2048), SECRETS)
    try:
        with pytest.raises(ExternalApiError, match="over the 2048 byte limit"):
            await source.fetch_page(None, 10)
    finally:
        await source.aclose()


async def test_the_destination_writes_once_and_flags_a_changed_document(s3_endpoint: str, s3: Any, bucket: str) -> None:
    dest = make_destination(settings(s3_endpoint, bucket, prefix="acme/out/"), SECRETS)
    document = UBL.read_bytes()
    try:
        written = await dest.push(document, idempotency_key="k1", filename="../INV-001.xml")
        again = await dest.push(document, idempotency_key="k1", filename="INV-001.xml")
        changed = await dest.push(document + b"<!-- edited -->", idempotency_key="k2", filename="INV-001.xml")
    finally:
        await dest.aclose()
    assert (written.outcome, written.remote_id, written.attempts) == ("accepted", "acme/out/INV-001.xml", 1)
    assert (again.outcome, again.remote_id) == ("duplicate", "acme/out/INV-001.xml")
    assert (changed.outcome, changed.remote_id) == ("rejected", None)
    stored = s3.get_object(Bucket=bucket, Key="acme/out/INV-001.xml")
    assert stored["Body"].read() == document
    assert stored["Metadata"]["idempotency-key"] == "k1"
    assert stored["ContentType"] == "application/xml"


async def test_a_missing_bucket_is_refused_without_retries(s3_endpoint: str) -> None:
    source = make_source(settings(s3_endpoint, "no-such-bucket-here"), SECRETS)
    try:
        with pytest.raises(ExternalApiError, match="NoSuchBucket") as caught:
            await source.fetch_page(None, 10)
    finally:
        await source.aclose()
    assert (caught.value.upstream_status, caught.value.retryable, caught.value.retry_count) == (404, False, 0)


async def test_an_unreachable_endpoint_is_retried_then_reported(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    dest = make_destination(settings(endpoint, "bucket", max_attempts=3, timeout_seconds=1), SECRETS)
    try:
        with pytest.raises(ExternalApiError, match="gave up after 3 attempts") as caught:
            await dest.push(b"<x/>", idempotency_key="k1", filename="a.xml")
    finally:
        await dest.aclose()
    assert caught.value.retry_count == 2
    assert caught.value.details["api_endpoint"] == "s3://bucket/acme/in/"


def test_s3_settings_are_checked() -> None:
    with pytest.raises(ConnectorConfigError, match="bucket"):
        make_source({"type": "s3", "bucket": "Not_A_Bucket"}, {})
    with pytest.raises(ConnectorConfigError, match="prefix"):
        make_source({"type": "s3", "bucket": "invoices", "prefix": "a/../b/"}, {})
    with pytest.raises(ConnectorConfigError, match="both access_key_id and secret_access_key"):
        make_source({"type": "s3", "bucket": "invoices"}, {"access_key_id": "AKIA"})
