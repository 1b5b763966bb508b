"""Where rendered documents and uploads live: a local folder (embedded mode) or S3 (scale-out mode).

Both implementations take the same keys and behave the same way, so moving from one to the other is
configuration only (`INVOICEFLOW_STORAGE_URL`). Keys are validated identically on both: a key that is
refused locally is refused on S3 too, and no key can name a file outside the storage root.

All blocking work (file I/O, boto3 calls) runs in worker threads: the API serves other requests while a
20 MB upload is in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import quote, unquote, urlsplit

from invoiceflow.core.errors import NotFound, ServiceUnavailable

if TYPE_CHECKING:
    from invoiceflow.core.settings import Settings

T = TypeVar("T")

CHUNK_SIZE = 256 * 1024
MAX_KEY_BYTES = 1024  # S3's limit; applied locally as well so both backends accept the same keys.
# SigV4 presigned URLs cannot live longer than 7 days.
MAX_PRESIGN_SECONDS = 7 * 86400
# boto3 switches to a multipart upload above this size; parts are uploaded in parallel and retried alone.
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNK_SIZE = 8 * 1024 * 1024

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_KEY_TOKEN = re.compile(r"[a-z0-9_]{1,32}")
_HEX = re.compile(r"[0-9a-f]{16,}")


class InvalidStorageKey(ValueError):
    """A key that could escape the storage root or that one of the backends would not accept.

    Keys are built by the application (`document_key`), never taken from a request, so this is a bug
    and deliberately not an `AppError`.
    """


class ObjectNotFound(NotFound):
    code = "FILE_NOT_FOUND"


class StorageUnavailable(ServiceUnavailable):
    code = "STORAGE_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class Storage(Protocol):
    """What the rest of the application may do with stored files; nothing else is assumed."""

    async def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject: ...

    async def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        """Store a file without loading it into memory (multipart upload on S3)."""
        ...

    async def get(self, key: str) -> bytes: ...

    async def open_stream(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """Open the object and return its chunks.

        Awaiting this raises `ObjectNotFound` before any chunk is produced, so a download route can
        answer 404 before it starts a streaming response. The iterator releases the file or connection
        when exhausted or closed.
        """
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error (steps are retried)."""
        ...

    async def presigned_url(self, key: str, *, expires_in: int, filename: str, content_type: str) -> str | None:
        """A URL the browser can download from directly, or None when the application must serve the file."""
        ...


def validate_key(key: str) -> str:
    """Return the key unchanged if it is a safe relative path of non-empty `/`-separated segments."""
    if not isinstance(key, str) or not key:
        raise InvalidStorageKey("storage key is empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidStorageKey(f"storage key is longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL_CHARS.search(key):
        raise InvalidStorageKey(f"storage key contains a control character: {key!r}")
    if "\\" in key:
        # A backslash is a separator on Windows: "a\\..\\..\\b" would climb out of the root there.
        raise InvalidStorageKey(f"storage key contains a backslash: {key!r}")
    if key.startswith("/"):
        raise InvalidStorageKey(f"storage key is absolute: {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidStorageKey(f"storage key has an empty, '.' or '..' segment: {key!r}")
    return key


def document_key(organization_id: uuid.UUID, invoice_id: uuid.UUID, kind: str, fmt: str, checksum: str) -> str:
    """The key of a rendered invoice document, namespaced by organisation.

    The checksum of the rendered inputs is part of the name, so re-running a render step that was
    interrupted (steps are at-least-once) writes the same key again instead of leaving an orphan.
    """
    if not _KEY_TOKEN.fullmatch(kind):
        raise InvalidStorageKey(f"document kind must be lowercase letters, digits or '_': {kind!r}")
    if not _KEY_TOKEN.fullmatch(fmt):
        raise InvalidStorageKey(f"document format must be lowercase letters, digits or '_': {fmt!r}")
    if not _HEX.fullmatch(checksum):
        raise InvalidStorageKey("checksum must be at least 16 lowercase hex digits")
    return f"orgs/{organization_id}/invoices/{invoice_id}/{kind}-{checksum[:16]}.{fmt}"


def attachment_disposition(filename: str) -> str:
    """A Content-Disposition header that downloads under `filename`, with an ASCII fallback (RFC 6266)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in filename) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# --- local folder -----------------------------------------------------------------------------------


class LocalStorage:
    """Files under one folder, written atomically: a reader sees the old file or the new one, never half.

    The content type is not kept next to the file: the `documents` row records it.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))

    def path_for(self, key: str) -> Path:
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # Defence in depth: a symlink placed inside the root must not lead outside it.
        real_root = os.path.realpath(self.root)
        if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
            raise InvalidStorageKey(f"storage key resolves outside the storage root: {key!r}")
        return path

    async def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        path = self.path_for(key)
        digest = hashlib.sha256()

        def write(out: IO[bytes]) -> None:
            digest.update(data)  # in the worker thread too: hashing 20 MB takes tens of milliseconds
            out.write(data)

        await asyncio.to_thread(_write_atomically, path, write)
        return StoredObject(key=key, size=len(data), sha256=digest.hexdigest())

    async def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        target = self.path_for(key)
        digest = hashlib.sha256()
        size = 0

        def copy(out: IO[bytes]) -> None:
            nonlocal size
            with open(path, "rb") as src:
                while chunk := src.read(CHUNK_SIZE):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)

        await asyncio.to_thread(_write_atomically, target, copy)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ObjectNotFound("File not found", details={"key": key}) from None

    async def open_stream(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        stream = self._stream(key, self.path_for(key), chunk_size)
        await anext(stream)  # opens the file: a missing one raises here, before any chunk is sent
        return stream

    async def _stream(self, key: str, path: Path, chunk_size: int) -> AsyncGenerator[bytes, None]:
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound("File not found", details={"key": key}) from None
        try:
            yield b""
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            # Also runs when an abandoned stream is garbage-collected (asyncio finalises async generators).
            handle.close()

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_for(key).unlink, missing_ok=True)

    async def presigned_url(self, key: str, *, expires_in: int, filename: str, content_type: str) -> str | None:
        """None: local files are served by the application behind its own signed link (core.signing)."""
        validate_key(key)
        return None


def _write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write into a temporary file next to the target, fsync it, then rename it over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if os.name == "posix":
        # The rename itself is durable only once the directory entry is on disk.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- S3 ---------------------------------------------------------------------------------------------


class S3Storage:
    """Objects in one bucket, under an optional prefix, with server-side encryption when configured.

    The bucket is provisioned by the operator; this class never creates or configures it. One boto3
    client is created up front and shared by the worker threads (clients are thread-safe, sessions are not).
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not bucket:
            raise ValueError("S3 storage needs a bucket name: s3://bucket/prefix")
        if prefix:
            validate_key(prefix)
        if kms_key_id and sse not in ("aws:kms", "aws:kms:dsse"):
            raise ValueError("INVOICEFLOW_S3_KMS_KEY_ID needs INVOICEFLOW_S3_SSE=aws:kms (or aws:kms:dsse)")
        if bool(access_key_id) != bool(secret_access_key):
            raise ValueError("set both INVOICEFLOW_S3_ACCESS_KEY_ID and INVOICEFLOW_S3_SECRET_ACCESS_KEY, or neither")
        self.bucket = bucket
        self.prefix = prefix
        self._encryption: dict[str, str] = {}
        if sse:
            self._encryption["ServerSideEncryption"] = sse
        if kms_key_id:
            self._encryption["SSEKMSKeyId"] = kms_key_id
        options: dict[str, Any] = {
            "signature_version": "s3v4",
            "retries": {"mode": "standard", "max_attempts": 5},
            "connect_timeout": 10,
            "read_timeout": 60,
            # Enough pooled connections for the default thread pool plus multipart part uploads.
            "max_pool_connections": 32,
        }
        if endpoint_url:
            # S3-compatible servers (MinIO, Ceph, moto) serve path-style URLs; several still reject the
            # default CRC checksums that botocore has sent on every upload since 1.36.
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        # Without explicit keys the default chain applies (environment, profile, instance or pod role).
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=Config(**options),
        )
        self._transfer_config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK_SIZE
        )

    def object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def put(self, key: str, data: bytes, *, content_type: str) -> StoredObject:
        object_key = self.object_key(key)
        sha256 = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        await self._call(
            "put",
            key,
            self._client.put_object,
            Bucket=self.bucket,
            Key=object_key,
            Body=data,
            ContentType=content_type,
            Metadata={"sha256": sha256},
            **self._encryption,
        )
        return StoredObject(key=key, size=len(data), sha256=sha256)

    async def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        object_key = self.object_key(key)
        size, sha256 = await asyncio.to_thread(_hash_file, path)
        extra = {"ContentType": content_type, "Metadata": {"sha256": sha256}, **self._encryption}
        await self._call(
            "put_file",
            key,
            self._client.upload_file,
            Filename=str(path),
            Bucket=self.bucket,
            Key=object_key,
            ExtraArgs=extra,
            Config=self._transfer_config,
        )
        return StoredObject(key=key, size=size, sha256=sha256)

    async def get(self, key: str) -> bytes:
        body = await self._get_body(key)
        try:
            return await self._call("get", key, body.read)
        finally:
            body.close()

    async def open_stream(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        stream = self._stream(key, chunk_size)
        await anext(stream)  # sends GET: a missing object raises here, before any chunk is sent
        return stream

    async def _stream(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        from botocore.exceptions import BotoCoreError

        body = await self._get_body(key)
        try:
            yield b""
            while True:
                try:
                    chunk: bytes = await asyncio.to_thread(body.read, chunk_size)
                except BotoCoreError as exc:  # a dropped connection or a read timeout mid-download
                    raise _unavailable("open_stream", exc) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        try:
            await self._call("exists", key, self._client.head_object, Bucket=self.bucket, Key=self.object_key(key))
        except ObjectNotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        await self._call("delete", key, self._client.delete_object, Bucket=self.bucket, Key=self.object_key(key))

    async def presigned_url(self, key: str, *, expires_in: int, filename: str, content_type: str) -> str | None:
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
        params = {
            "Bucket": self.bucket,
            "Key": self.object_key(key),
            # Signed into the URL: S3 answers with these headers, so the browser saves the right file.
            "ResponseContentDisposition": attachment_disposition(filename),
            "ResponseContentType": content_type,
        }
        url: str = await self._call(
            "presigned_url",
            key,
            self._client.generate_presigned_url,
            "get_object",
            Params=params,
            ExpiresIn=expires_in,
        )
        return url

    async def _get_body(self, key: str) -> Any:
        response = await self._call("get", key, self._client.get_object, Bucket=self.bucket, Key=self.object_key(key))
        return response["Body"]

    async def _call(self, operation: str, key: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one boto3 call in a worker thread and translate its failures into our errors."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # A HEAD answer has no body, hence the bare "404"; a missing bucket is a configuration error
            # (NoSuchBucket) and must not pass for a missing file.
            if error.get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound("File not found", details={"key": key}) from None
            raise _unavailable(operation, exc, code=error.get("Code"), status=status) from exc
        except BotoCoreError as exc:
            raise _unavailable(operation, exc) from exc


def _unavailable(
    operation: str, exc: Exception, *, code: str | None = None, status: int | None = None
) -> StorageUnavailable:
    details: dict[str, Any] = {"operation": operation, "error": type(exc).__name__}
    if code is not None:
        details["code"] = code
    if status is not None:
        details["status_code"] = status
    return StorageUnavailable("Object storage is unavailable", details=details)


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as src:
        while chunk := src.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# --- configuration ----------------------------------------------------------------------------------


def make_storage(settings: Settings) -> Storage:
    """The storage named by `INVOICEFLOW_STORAGE_URL` (default: a `documents` folder in the data folder)."""
    url = (settings.storage_url or "").strip()
    if not url:
        return LocalStorage(settings.data_dir / "documents")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError("INVOICEFLOW_STORAGE_URL takes no query string or fragment")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(
                "INVOICEFLOW_STORAGE_URL file URLs need an absolute path: file:///srv/invoiceflow/documents"
            )
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        secret = settings.s3_secret_access_key
        return S3Storage(
            bucket=parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            sse=settings.s3_sse,
            kms_key_id=settings.s3_kms_key_id,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
        )
    raise ValueError(f"INVOICEFLOW_STORAGE_URL must start with file:// or s3://, not {parts.scheme or url!r}")
