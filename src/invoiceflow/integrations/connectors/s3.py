"""S3 source and destination: e-invoice objects under a bucket prefix (AWS S3, MinIO, Ceph, …), with boto3.

The semantics are the folder connector's (see `folder.py`): the source lists `*.xml` keys under the prefix in key
order with ListObjectsV2 `StartAfter` = the cursor (the key relative to the prefix), the destination writes
`<prefix><safe filename>` only if no object has that key (`If-None-Match: *`, S3's conditional write) and compares
bytes when one does: same bytes = duplicate, different = rejected. A server that ignores conditional writes
would overwrite instead; AWS S3 and MinIO honour them.

boto3 blocks, so every call runs in a worker thread; retries are the `CallGuard`'s (botocore's own are off), so
throttling, 5xx and connection failures follow the same backoff, limits and circuit as the HTTP connectors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from invoiceflow.integrations.connectors.base import (
    ConnectorOptions,
    ExternalApiError,
    PushResult,
    SourceDocument,
    SourcePage,
    check_idempotency_key,
    safe_filename,
)
from invoiceflow.integrations.connectors.folder import detect_format
from invoiceflow.integrations.resilience import CallGuard, RetryableFailure, settings_from

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RETRYABLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "ServiceUnavailable"}
)
_LIST_PAGE = 1000


class S3Config(ConnectorOptions):
    """`{"type": "s3", "bucket": "invoices", "prefix": "acme/in/", "endpoint_url": null, "region": "eu-west-1"}`."""

    type: Literal["s3"] = "s3"
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET.fullmatch(value):
            raise ValueError("not a valid S3 bucket name")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        prefix = value.strip().lstrip("/")
        if any(part in (".", "..") for part in prefix.split("/")[:-1]) or "\0" in prefix:
            raise ValueError("prefix must not contain '.' or '..' segments")
        return prefix if not prefix or prefix.endswith("/") else prefix + "/"

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must be an http:// or https:// URL")
        return value or None


class S3Secrets(BaseModel):
    """`{"access_key_id": "…", "secret_access_key": "…", "session_token": "…"}`; empty = the default chain
    (environment, profile, instance or pod role)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None

    @model_validator(mode="after")
    def _pair(self) -> S3Secrets:
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        return self


def _client(config: S3Config, secrets: S3Secrets) -> Any:
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "signature_version": "s3v4",
        "retries": {"mode": "standard", "total_max_attempts": 1},
        "connect_timeout": config.timeout_seconds,
        "read_timeout": config.timeout_seconds,
        "max_pool_connections": max(10, 2 * config.max_concurrency),
    }
    if config.endpoint_url:
        options["s3"] = {"addressing_style": "path"}
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=secrets.access_key_id or None,
        aws_secret_access_key=secrets.secret_access_key.get_secret_value() if secrets.secret_access_key else None,
        aws_session_token=secrets.session_token.get_secret_value() if secrets.session_token else None,
        config=Config(**options),
    )


def _error_code(exc: Any) -> tuple[str, int | None]:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code, status if isinstance(status, int) else None


class _S3:
    """The boto3 client and the translation of its errors, shared by source and destination."""

    def __init__(self, config: S3Config, secrets: S3Secrets) -> None:
        self.config = config
        self.endpoint = f"s3://{config.bucket}/{config.prefix}"
        self.client = _client(config, secrets)

    async def run(self, fn: Callable[..., Any], /, *, passthrough: frozenset[str] = frozenset(), **kwargs: Any) -> Any:
        """Run one boto3 call in a thread; `RetryableFailure` for what a retry may fix, `ExternalApiError` for the
        rest, the `ClientError` itself for codes in `passthrough`."""
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        try:
            return await asyncio.to_thread(fn, **kwargs)
        except ClientError as exc:
            code, status = _error_code(exc)
            if code in passthrough:
                raise
            if code in _RETRYABLE_CODES or status in (408, 429) or (status is not None and status >= 500):
                raise RetryableFailure(f"S3 answered {code or 'an error'} (HTTP {status})", status_code=status) from exc
            raise ExternalApiError(
                f"S3 refused the request: {code or 'error'} (HTTP {status})",
                api_endpoint=self.endpoint,
                upstream_status=status,
                retryable=False,
            ) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise RetryableFailure(f"S3 connection failed ({type(exc).__name__})") from exc

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


class S3Source:
    def __init__(self, config: S3Config, secrets: S3Secrets, *, guard: CallGuard | None = None) -> None:
        self.config = config
        self._s3 = _S3(config, secrets)
        self.endpoint = self._s3.endpoint
        self._guard = guard or CallGuard("s3", settings_from(config))

    async def fetch_page(self, cursor: str | None, limit: int) -> SourcePage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        prefix = self.config.prefix
        keys: list[str] = []
        last = cursor
        token: str | None = None
        while len(keys) < limit:
            request: dict[str, Any] = {"Bucket": self.config.bucket, "Prefix": prefix, "MaxKeys": _LIST_PAGE}
            if token is not None:
                request["ContinuationToken"] = token
            elif cursor is not None:
                request["StartAfter"] = prefix + cursor
            listed = (await self._guarded("list", self._s3.client.list_objects_v2, **request)) or {}
            for item in listed.get("Contents", []):
                key = str(item["Key"])
                last = key[len(prefix) :]
                name = key.rsplit("/", 1)[-1]
                if not name.startswith(".") and name.lower().endswith(".xml"):
                    if int(item.get("Size", 0)) > self.config.max_document_bytes:
                        raise ExternalApiError(
                            f"{key} has {item['Size']} bytes, over the {self.config.max_document_bytes} byte limit",
                            api_endpoint=self.endpoint,
                            retryable=False,
                        )
                    keys.append(key)
                    if len(keys) == limit:
                        break
            token = listed.get("NextContinuationToken") if listed.get("IsTruncated") else None
            if token is None:
                break
        contents = await asyncio.gather(*(self._get(key) for key in keys))
        documents = [
            SourceDocument(source_id=key[len(prefix) :], format=detect_format(content), content=content)
            for key, content in zip(keys, contents, strict=True)
        ]
        return SourcePage(documents=documents, next_cursor=last)

    async def _guarded(self, operation: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        attempted = await self._guard.call(operation, self.endpoint, lambda: self._s3.run(fn, **kwargs))
        return attempted.value

    async def _get(self, key: str) -> bytes:
        cap = self.config.max_document_bytes

        def read() -> bytes:
            body = self._s3.client.get_object(Bucket=self.config.bucket, Key=key)["Body"]
            try:
                return bytes(body.read(cap + 1))
            finally:
                body.close()

        content: bytes = await self._guarded("fetch", read)
        if len(content) > cap:
            raise ExternalApiError(f"{key} is larger than {cap} bytes", api_endpoint=self.endpoint, retryable=False)
        return content

    async def aclose(self) -> None:
        await self._s3.close()


class S3Destination:
    def __init__(self, config: S3Config, secrets: S3Secrets, *, guard: Callable[[], CallGuard]) -> None:
        self.config = config
        self._s3 = _S3(config, secrets)
        self.endpoint = self._s3.endpoint
        self._guard_source = guard
        self._guard: CallGuard | None = None

    async def push(
        self, document: bytes, *, idempotency_key: str, filename: str, content_type: str = "application/xml"
    ) -> PushResult:
        check_idempotency_key(idempotency_key)
        key = self.config.prefix + safe_filename(filename, fallback=idempotency_key)
        if self._guard is None:
            self._guard = self._guard_source()
        attempted = await self._guard.call(
            "push",
            self.endpoint,
            lambda: self._put(key, document, idempotency_key, content_type),
            result_label=lambda result: result.outcome,
        )
        return dataclasses.replace(attempted.value, attempts=attempted.attempts)

    async def _put(self, key: str, document: bytes, idempotency_key: str, content_type: str) -> PushResult:
        from botocore.exceptions import ClientError

        try:
            await self._s3.run(
                self._s3.client.put_object,
                passthrough=frozenset({"PreconditionFailed"}),
                Bucket=self.config.bucket,
                Key=key,
                Body=document,
                ContentType=content_type,
                IfNoneMatch="*",
                Metadata={"idempotency-key": idempotency_key, "sha256": hashlib.sha256(document).hexdigest()},
            )
        except ClientError:  # PreconditionFailed: an object already has this key
            return await self._compare(key, document)
        return PushResult("accepted", 200, key, f"written as {key}", 0)

    async def _compare(self, key: str, document: bytes) -> PushResult:
        def read() -> bytes:
            body = self._s3.client.get_object(Bucket=self.config.bucket, Key=key)["Body"]
            try:
                return bytes(body.read(len(document) + 1))
            finally:
                body.close()

        existing = await self._s3.run(read)
        if existing == document:
            return PushResult("duplicate", 412, key, f"the same document already exists as {key}", 0)
        return PushResult("rejected", 412, None, f"a different document already exists as {key}; not overwritten", 0)

    async def aclose(self) -> None:
        await self._s3.close()
