"""Object storage: the local folder and S3 (a real local S3 server) behave the same way."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from invoiceflow.core.errors import ServiceUnavailable
from invoiceflow.core.storage import (
    InvalidStorageKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageUnavailable,
    attachment_disposition,
    document_key,
    make_storage,
    validate_key,
)
from tests.conftest import make_settings
from tests.s3server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, create_bucket

pytestmark = pytest.mark.anyio

PDF = "application/pdf"
ORG = uuid.UUID("0b5f4a52-3c43-4c8e-9d0c-6f0d1c0e2a11")
INVOICE = uuid.UUID("7d1e2f30-8a4b-4c5d-9e6f-a0b1c2d3e4f5")
CHECKSUM = hashlib.sha256(b"rendered inputs").hexdigest()

PATH_TRICKS = [
    "../x",
    "/etc/passwd",
    "a/../../b",
    "a\\b",
    "a\x00b",
    "",
    "..",
    ".",
    "./a",
    "a/./b",
    "a//b",
    "a/",
    "//server/share",
    "a\nb",
    "..\\..\\windows\\win.ini",
    "x" * 1025,
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


async def read_all(storage: Storage, key: str, *, chunk_size: int = 64 * 1024) -> list[bytes]:
    stream = await storage.open_stream(key, chunk_size=chunk_size)
    return [chunk async for chunk in stream]


# --- keys -------------------------------------------------------------------------------------------


def test_document_key_is_namespaced_by_organisation_and_invoice() -> None:
    key = document_key(ORG, INVOICE, "invoice", "pdf", CHECKSUM)
    assert key == f"orgs/{ORG}/invoices/{INVOICE}/invoice-{CHECKSUM[:16]}.pdf"
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("kind", "fmt", "checksum"),
    [
        ("../invoice", "pdf", CHECKSUM),
        ("invoice", "pdf/../x", CHECKSUM),
        ("Invoice", "pdf", CHECKSUM),
        ("invoice", "", CHECKSUM),
        ("invoice", "pdf", "abc"),
        ("invoice", "pdf", "../" + CHECKSUM),
        ("invoice", "pdf", CHECKSUM.upper()),
    ],
)
def test_document_key_refuses_parts_that_are_not_plain_tokens(kind: str, fmt: str, checksum: str) -> None:
    with pytest.raises(InvalidStorageKey):
        document_key(ORG, INVOICE, kind, fmt, checksum)


@pytest.mark.parametrize("key", PATH_TRICKS)
def test_validate_key_refuses_path_tricks(key: str) -> None:
    with pytest.raises(InvalidStorageKey, match="storage key"):
        validate_key(key)


def test_attachment_disposition_keeps_unicode_and_gives_an_ascii_fallback() -> None:
    value = attachment_disposition('Facture "2026-001" é.pdf')
    assert value == (
        "attachment; filename=\"Facture _2026-001_ _.pdf\"; filename*=UTF-8''Facture%20%222026-001%22%20%C3%A9.pdf"
    )


# --- local folder -----------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "documents")


async def test_local_round_trip(local: LocalStorage) -> None:
    key = document_key(ORG, INVOICE, "invoice", "pdf", CHECKSUM)
    data = b"%PDF-1.7 fake"

    stored = await local.put(key, data, content_type=PDF)

    assert (stored.key, stored.size, stored.sha256) == (key, len(data), sha256(data))
    assert (local.root / key).read_bytes() == data
    assert await local.get(key) == data
    assert await local.exists(key)
    assert await local.presigned_url(key, expires_in=60, filename="a.pdf", content_type=PDF) is None
    await local.delete(key)
    assert not await local.exists(key)
    await local.delete(key)  # deleting twice is fine: steps are retried
    with pytest.raises(ObjectNotFound) as missing:
        await local.get(key)
    assert missing.value.status_code == 404


async def test_local_overwrite_replaces_the_whole_file_and_leaves_no_temporary_files(local: LocalStorage) -> None:
    await local.put("a/b.bin", b"old" * 1000, content_type=PDF)
    await local.put("a/b.bin", b"new", content_type=PDF)

    assert await local.get("a/b.bin") == b"new"
    assert os.listdir(local.root / "a") == ["b.bin"]


async def test_local_readers_never_see_a_half_written_file(local: LocalStorage) -> None:
    versions = [b"a" * (2 * 1024 * 1024), b"b" * (3 * 1024 * 1024)]
    path = local.root / "doc.bin"
    await local.put("doc.bin", versions[0], content_type=PDF)
    seen: list[bytes] = []
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            seen.append(path.read_bytes())

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        for i in range(20):
            await local.put("doc.bin", versions[i % 2], content_type=PDF)
    finally:
        stop.set()
        reader.join()

    assert seen
    assert all(content in versions for content in seen)


async def test_local_failed_write_keeps_the_previous_file(local: LocalStorage, tmp_path: Path) -> None:
    await local.put("a/doc.pdf", b"good", content_type=PDF)

    with pytest.raises(FileNotFoundError):
        await local.put_file("a/doc.pdf", tmp_path / "does-not-exist.pdf", content_type=PDF)

    assert await local.get("a/doc.pdf") == b"good"
    assert os.listdir(local.root / "a") == ["doc.pdf"]


async def test_local_put_file_copies_in_chunks(local: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "big.pdf"
    data = os.urandom(3 * 1024 * 1024 + 17)
    source.write_bytes(data)

    stored = await local.put_file("orgs/x/big.pdf", source, content_type=PDF)

    assert (stored.size, stored.sha256) == (len(data), sha256(data))
    assert (local.root / "orgs" / "x" / "big.pdf").read_bytes() == data


async def test_local_streaming_read_yields_bounded_chunks(local: LocalStorage) -> None:
    data = os.urandom(1024 * 1024 + 5)
    await local.put("s/doc.bin", data, content_type=PDF)

    chunks = await read_all(local, "s/doc.bin", chunk_size=64 * 1024)

    assert len(chunks) == 17
    assert max(len(c) for c in chunks) == 64 * 1024
    assert b"".join(chunks) == data


async def test_local_stream_of_a_missing_file_fails_before_the_first_chunk(local: LocalStorage) -> None:
    with pytest.raises(ObjectNotFound):
        await local.open_stream("nothing/here.pdf")


async def test_local_stream_closes_the_file_when_abandoned(local: LocalStorage) -> None:
    await local.put("s/doc.bin", b"x" * 10_000, content_type=PDF)
    stream = await local.open_stream("s/doc.bin", chunk_size=1000)
    assert await anext(stream) == b"x" * 1000
    await stream.aclose()  # type: ignore[attr-defined]  # what a server does when the client goes away
    await local.delete("s/doc.bin")
    assert not await local.exists("s/doc.bin")


@pytest.mark.parametrize("key", PATH_TRICKS)
async def test_local_refuses_path_tricks_in_every_operation(key: str, tmp_path: Path) -> None:
    root = tmp_path / "root" / "documents"
    storage = LocalStorage(root)
    source = tmp_path / "source.pdf"
    source.write_bytes(b"data")
    before = tree(tmp_path)

    with pytest.raises(InvalidStorageKey):
        await storage.put(key, b"data", content_type=PDF)
    with pytest.raises(InvalidStorageKey):
        await storage.put_file(key, source, content_type=PDF)
    with pytest.raises(InvalidStorageKey):
        await storage.get(key)
    with pytest.raises(InvalidStorageKey):
        await storage.open_stream(key)
    with pytest.raises(InvalidStorageKey):
        await storage.exists(key)
    with pytest.raises(InvalidStorageKey):
        await storage.delete(key)
    with pytest.raises(InvalidStorageKey):
        await storage.presigned_url(key, expires_in=60, filename="a.pdf", content_type=PDF)

    assert tree(tmp_path) == before


async def test_local_refuses_a_symlink_that_leads_out_of_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "documents"
    root.mkdir()
    (root / "orgs").symlink_to(outside, target_is_directory=True)
    storage = LocalStorage(root)

    with pytest.raises(InvalidStorageKey, match="outside the storage root"):
        await storage.put("orgs/secret.txt", b"data", content_type=PDF)

    assert list(outside.iterdir()) == []


# --- configuration ----------------------------------------------------------------------------------


def test_make_storage_defaults_to_a_folder_in_the_data_dir(tmp_path: Path) -> None:
    storage = make_storage(make_settings("", tmp_path))
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "documents"


def test_make_storage_takes_an_absolute_file_url(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere docs"
    storage = make_storage(make_settings("", tmp_path, storage_url=target.as_uri()))
    assert isinstance(storage, LocalStorage)
    assert storage.root == target


def test_make_storage_builds_s3_from_the_url_and_the_s3_settings(tmp_path: Path) -> None:
    settings = make_settings(
        "",
        tmp_path,
        storage_url="s3://invoices-bucket/prod/eu",
        s3_endpoint_url="http://127.0.0.1:9",
        s3_region=REGION,
        s3_sse="aws:kms",
        s3_kms_key_id="alias/invoiceflow",
        s3_access_key_id=ACCESS_KEY_ID,
        s3_secret_access_key=SECRET_ACCESS_KEY,
    )
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("invoices-bucket", "prod/eu")
    assert storage.object_key("orgs/a/b.pdf") == "prod/eu/orgs/a/b.pdf"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file://relative/path", "absolute path"),
        ("ftp://host/x", "file:// or s3://"),
        ("/just/a/path", "file:// or s3://"),
        ("s3:///prefix-without-bucket", "bucket"),
        ("s3://bucket/a/../b", "storage key"),
        ("s3://bucket/x?versioning=1", "query"),
    ],
)
def test_make_storage_refuses_bad_urls(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        make_storage(make_settings("", tmp_path, storage_url=url))


def test_a_kms_key_without_kms_encryption_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="S3_SSE"):
        S3Storage(bucket="b", sse="AES256", kms_key_id="alias/x", region=REGION)


# --- S3 (a real local S3 server) --------------------------------------------------------------------


@pytest.fixture
def bucket(s3: Any) -> str:
    return create_bucket(s3)


def make_s3(endpoint: str, bucket: str, **options: Any) -> S3Storage:
    return S3Storage(
        bucket=bucket,
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        **options,
    )


async def test_s3_round_trip(s3_endpoint: str, bucket: str, s3: Any) -> None:
    storage = make_s3(s3_endpoint, bucket)
    key = document_key(ORG, INVOICE, "invoice", "pdf", CHECKSUM)
    data = b"%PDF-1.7 fake"

    stored = await storage.put(key, data, content_type=PDF)

    assert (stored.key, stored.size, stored.sha256) == (key, len(data), sha256(data))
    head = s3.head_object(Bucket=bucket, Key=key)
    assert (head["ContentType"], head["ContentLength"], head["Metadata"]) == (PDF, len(data), {"sha256": sha256(data)})
    assert await storage.get(key) == data
    assert await storage.exists(key)
    await storage.delete(key)
    assert not await storage.exists(key)
    await storage.delete(key)
    with pytest.raises(ObjectNotFound):
        await storage.get(key)
    with pytest.raises(ObjectNotFound):
        await storage.open_stream(key)


async def test_s3_streaming_read(s3_endpoint: str, bucket: str) -> None:
    storage = make_s3(s3_endpoint, bucket)
    data = os.urandom(1024 * 1024 + 5)
    await storage.put("s/doc.bin", data, content_type="application/octet-stream")

    chunks = await read_all(storage, "s/doc.bin", chunk_size=64 * 1024)

    assert max(len(c) for c in chunks) <= 64 * 1024
    assert b"".join(chunks) == data


@pytest.mark.parametrize(
    ("sse", "kms_key_id"),
    [("AES256", None), ("aws:kms", "arn:aws:kms:eu-west-1:123456789012:key/5e1f0a3c-0000-4000-8000-000000000001")],
)
async def test_s3_applies_server_side_encryption(
    s3_endpoint: str, bucket: str, s3: Any, sse: str, kms_key_id: str | None, tmp_path: Path
) -> None:
    storage = make_s3(s3_endpoint, bucket, sse=sse, kms_key_id=kms_key_id)
    source = tmp_path / "doc.pdf"
    source.write_bytes(b"file body")

    await storage.put("small.pdf", b"body", content_type=PDF)
    await storage.put_file("from-file.pdf", source, content_type=PDF)

    for key in ("small.pdf", "from-file.pdf"):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == sse
        assert head.get("SSEKMSKeyId") == kms_key_id


async def test_s3_presigned_url_downloads_the_object_under_its_filename(s3_endpoint: str, bucket: str) -> None:
    storage = make_s3(s3_endpoint, bucket, prefix="tenant-data")
    key = document_key(ORG, INVOICE, "invoice", "pdf", CHECKSUM)
    await storage.put(key, b"%PDF-1.7 body", content_type=PDF)

    signed_at = datetime.now(UTC)
    url = await storage.presigned_url(key, expires_in=300, filename="Facture é-001.pdf", content_type=PDF)

    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    issued = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((issued - signed_at).total_seconds()) < 5
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b"%PDF-1.7 body"
    assert response.headers["content-type"] == PDF
    assert response.headers["content-disposition"] == attachment_disposition("Facture é-001.pdf")


@pytest.mark.xfail(
    strict=True,
    reason="moto 5.2.5 does not enforce X-Amz-Expires on presigned URLs (AWS and MinIO answer 403); "
    "remove this marker when it does",
)
async def test_s3_presigned_url_stops_working_after_it_expires(s3_endpoint: str, bucket: str) -> None:
    storage = make_s3(s3_endpoint, bucket)
    await storage.put("doc.pdf", b"body", content_type=PDF)
    url = await storage.presigned_url("doc.pdf", expires_in=1, filename="doc.pdf", content_type=PDF)
    assert url is not None

    await asyncio.sleep(2.1)
    async with httpx.AsyncClient() as http:
        response = await http.get(url)

    assert response.status_code == 403


async def test_s3_presigned_url_lifetime_is_bounded(s3_endpoint: str, bucket: str) -> None:
    storage = make_s3(s3_endpoint, bucket)
    for seconds in (0, 7 * 86400 + 1):
        with pytest.raises(ValueError, match="expires_in"):
            await storage.presigned_url("doc.pdf", expires_in=seconds, filename="doc.pdf", content_type=PDF)


async def test_s3_prefixes_and_organisations_do_not_see_each_other(s3_endpoint: str, bucket: str, s3: Any) -> None:
    tenant_a = make_s3(s3_endpoint, bucket, prefix="tenant-a")
    tenant_b = make_s3(s3_endpoint, bucket, prefix="tenant-b/eu")
    other_org = uuid.uuid4()
    key_a = document_key(ORG, INVOICE, "invoice", "pdf", CHECKSUM)
    key_other_org = document_key(other_org, INVOICE, "invoice", "pdf", CHECKSUM)

    await tenant_a.put(key_a, b"a", content_type=PDF)
    await tenant_a.put(key_other_org, b"other org", content_type=PDF)
    await tenant_b.put(key_a, b"b", content_type=PDF)

    listed = sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert listed == sorted([f"tenant-a/{key_a}", f"tenant-a/{key_other_org}", f"tenant-b/eu/{key_a}"])
    assert [k for k in listed if k.startswith(f"tenant-a/orgs/{ORG}/")] == [f"tenant-a/{key_a}"]
    assert await tenant_a.get(key_a) == b"a"
    assert await tenant_b.get(key_a) == b"b"
    assert not await tenant_b.exists(key_other_org)


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a//b", "a\\b"])
async def test_s3_refuses_the_same_keys_as_the_local_folder(s3_endpoint: str, bucket: str, key: str) -> None:
    storage = make_s3(s3_endpoint, bucket, prefix="p")
    with pytest.raises(InvalidStorageKey):
        await storage.put(key, b"x", content_type=PDF)
    with pytest.raises(InvalidStorageKey):
        await storage.presigned_url(key, expires_in=60, filename="x.pdf", content_type=PDF)


async def test_s3_large_put_file_uses_a_multipart_upload_without_blocking_the_event_loop(
    s3_endpoint: str, bucket: str, s3: Any, tmp_path: Path
) -> None:
    storage = make_s3(s3_endpoint, bucket, sse="AES256")
    source = tmp_path / "large.pdf"
    data = os.urandom(20 * 1024 * 1024)
    source.write_bytes(data)
    gaps: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(heartbeat())
    started = time.monotonic()
    try:
        stored = await storage.put_file("orgs/x/large.pdf", source, content_type=PDF)
    finally:
        done.set()
        await beat
    elapsed = time.monotonic() - started

    assert (stored.size, stored.sha256) == (len(data), sha256(data))
    head = s3.head_object(Bucket=bucket, Key="orgs/x/large.pdf")
    # S3 gives a multipart object the ETag "<md5 of the part md5s>-<number of parts>": 20 MiB / 8 MiB = 3.
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == PDF
    # The loop kept running while boto3 worked: no pause came anywhere near the upload's duration.
    assert len(gaps) >= 5
    assert max(gaps) < max(0.5, elapsed / 2)
    streamed = hashlib.sha256()
    for chunk in await read_all(storage, "orgs/x/large.pdf", chunk_size=1024 * 1024):
        streamed.update(chunk)
    assert streamed.hexdigest() == sha256(data)


async def test_s3_missing_bucket_is_an_unavailable_upstream_not_a_missing_file(s3_endpoint: str) -> None:
    storage = make_s3(s3_endpoint, "no-such-bucket-" + uuid.uuid4().hex[:8])

    with pytest.raises(StorageUnavailable) as failure:
        await storage.get("doc.pdf")

    assert isinstance(failure.value, ServiceUnavailable)
    assert failure.value.status_code == 503
    assert failure.value.details["code"] == "NoSuchBucket"


@pytest.fixture
def closed_port() -> Iterator[int]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])  # bound but not listening: connections are refused


async def test_s3_unreachable_endpoint_is_an_unavailable_upstream(closed_port: int) -> None:
    storage = S3Storage(
        bucket="b",
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )

    with pytest.raises(StorageUnavailable) as failure:
        await storage.put("doc.pdf", b"x", content_type=PDF)

    assert failure.value.details["operation"] == "put"
