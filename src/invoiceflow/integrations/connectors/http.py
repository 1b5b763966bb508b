"""HTTP source and destination speaking the reference protocol (DESIGN.md, "Integration HTTP protocol").

source:      GET  {url}/invoices?since={cursor}&limit={n} → {"invoices": [{"id", "format", "document"}], "next_cursor"}
destination: POST {url}/invoices, UBL body, Idempotency-Key → 201/200 {"id"} accepted · 409 duplicate ·
             429/5xx/timeouts/dropped connections retried (CallGuard) · other 4xx rejected with the body kept.

A partner's answer is untrusted input: the source checks the page's shape, item count, types and sizes, and
every body is read through a size cap. Redirects are never followed (a partner that moved must be configured
with its new URL, and credentials never travel to another host); refused credentials (401/403/407) are an
`ExternalApiError`, not a rejected invoice, because the next invoice would be refused too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Callable
from typing import Any, Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from invoiceflow.integrations.connectors.base import (
    ConnectorOptions,
    ExternalApiError,
    PushResult,
    SourceDocument,
    SourcePage,
    check_idempotency_key,
    keep,
)
from invoiceflow.integrations.resilience import CallGuard, RetryableFailure, parse_retry_after, settings_from

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# A destination's answer is only kept for the record (2,000 characters); reading more is never useful.
_DESTINATION_READ_BYTES = 64 * 1024
_MAX_CURSOR_CHARS = 4096
_MAX_ID_CHARS = 512
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if any(ch in value for ch in "\r\n\0"):
            raise ValueError(f"header {name} has a line break or NUL in its value")
    return headers


class HttpConfig(ConnectorOptions):
    """`{"type": "http", "url": "https://partner.example/api", "headers": {...}, ...}`; the protocol's routes
    are under `url` (`{url}/invoices`). Non-secret headers only: credentials belong in `HttpSecrets`."""

    type: Literal["http"] = "http"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    api_key_header: str = "X-API-Key"
    page_size: int = Field(100, ge=1, le=1000)
    """Source: the most documents asked for in one request (the job's limit is capped to it)."""
    max_response_bytes: int = Field(DEFAULT_MAX_RESPONSE_BYTES, ge=1024, le=1024 * 1024 * 1024)
    """Source: the largest page body read."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            url = httpx.URL(value.strip())
        except httpx.InvalidURL as exc:
            raise ValueError(f"invalid URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("url must be an absolute http:// or https:// URL")
        if url.userinfo:
            raise ValueError("put credentials in the secrets, not in the URL")
        if url.query or url.fragment:
            raise ValueError("url must not have a query or a fragment")
        return str(url).rstrip("/")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_headers(value)

    @field_validator("api_key_header")
    @classmethod
    def _api_key_header(cls, value: str) -> str:
        return next(iter(_check_headers({value: ""})))


class HttpSecrets(BaseModel):
    """`{"bearer_token": "…"}` → `Authorization: Bearer …`; `{"api_key": "…"}` → `{api_key_header}: …`;
    `{"headers": {"Name": "value"}}` for anything else. Later ones win: headers, then bearer, then API key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    headers: dict[str, str] = Field(default_factory=dict)
    bearer_token: SecretStr | None = None
    api_key: SecretStr | None = None

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_headers(value)


def request_headers(config: HttpConfig, secrets: HttpSecrets) -> dict[str, str]:
    headers = {**config.headers, **secrets.headers}
    if secrets.bearer_token is not None:
        headers["Authorization"] = f"Bearer {secrets.bearer_token.get_secret_value()}"
    if secrets.api_key is not None:
        headers[config.api_key_header] = secrets.api_key.get_secret_value()
    return _check_headers(headers)


def _client(config: HttpConfig, secrets: HttpSecrets, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers=request_headers(config, secrets),
        timeout=httpx.Timeout(config.timeout_seconds),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def _deadline(config: HttpConfig) -> float:
    """httpx's timeout bounds each wait (connect, each read); this bounds a whole attempt against a partner that
    drips bytes."""
    return 3 * config.timeout_seconds


def _retryable_status(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


async def _read_prefix(response: httpx.Response, limit: int) -> bytes:
    """At most `limit` bytes of the body; the rest is never read (the connection is then not reused)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _transport_failure(exc: Exception, timeout: float) -> RetryableFailure:
    if isinstance(exc, TimeoutError):
        return RetryableFailure(f"no complete answer within {timeout:g} s")
    if isinstance(exc, httpx.TimeoutException):
        return RetryableFailure(f"timed out ({type(exc).__name__})")
    return RetryableFailure(f"connection failed ({type(exc).__name__}: {exc})")


_TRANSIENT = (TimeoutError, httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _refusal(endpoint: str, status: int, headers: httpx.Headers, text: str, what: str) -> ExternalApiError:
    if status in (401, 403, 407):
        message = f"the {what} refused the credentials (HTTP {status})"
    elif 300 <= status < 400:
        message = (
            f"the {what} answered a redirect (HTTP {status}) to {headers.get('location', '?')}; redirects are "
            "not followed, configure the final URL"
        )
    else:
        message = f"the {what} answered HTTP {status}: {text[:300]}"
    return ExternalApiError(message, api_endpoint=endpoint, upstream_status=status, retryable=False)


# --------------------------------------------------------------------------------------------- source


def parse_page(body: bytes, *, endpoint: str, cursor: str | None, limit: int, max_document_bytes: int) -> SourcePage:
    """Check a source page's shape; anything unexpected is an `ExternalApiError` that names the problem."""

    def malformed(reason: str) -> ExternalApiError:
        return ExternalApiError(
            f"the source answered a malformed page: {reason}",
            api_endpoint=endpoint,
            upstream_status=200,
            retryable=False,
        )

    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise malformed("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise malformed("the body is not a JSON object")
    items = payload.get("invoices")
    if not isinstance(items, list):
        raise malformed('"invoices" is not a list')
    if len(items) > limit:
        raise malformed(f"{len(items)} invoices for a limit of {limit}")
    next_cursor = payload.get("next_cursor")
    if next_cursor is not None and (not isinstance(next_cursor, str) or not 0 < len(next_cursor) <= _MAX_CURSOR_CHARS):
        raise malformed('"next_cursor" is not a non-empty string of reasonable length')
    documents: list[SourceDocument] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise malformed(f"invoices[{index}] is not an object")
        source_id = item.get("id")
        if isinstance(source_id, int) and not isinstance(source_id, bool):
            source_id = str(source_id)
        if not isinstance(source_id, str) or not 0 < len(source_id) <= _MAX_ID_CHARS:
            raise malformed(f"invoices[{index}].id is not a non-empty string")
        fmt = item.get("format")
        if not isinstance(fmt, str) or fmt.lower() not in ("ubl", "cii"):
            raise malformed(f'invoices[{index}].format is not "ubl" or "cii"')
        text = item.get("document")
        if not isinstance(text, str) or not text.strip():
            raise malformed(f"invoices[{index}].document is not a non-empty string")
        try:
            content = text.encode("utf-8")
        except UnicodeEncodeError:
            raise malformed(f"invoices[{index}].document is not valid Unicode") from None
        if len(content) > max_document_bytes:
            raise ExternalApiError(
                f"the source's document {source_id[:100]!r} has {len(content)} bytes, over the "
                f"{max_document_bytes} byte limit",
                api_endpoint=endpoint,
                upstream_status=200,
                retryable=False,
            )
        documents.append(SourceDocument(source_id=source_id, format=fmt.lower(), content=content))
    if documents and (next_cursor is None or next_cursor == cursor):
        raise malformed("a page with invoices must give a new next_cursor")
    return SourcePage(documents=documents, next_cursor=next_cursor if documents or next_cursor else cursor)


class HttpSource:
    def __init__(self, config: HttpConfig, secrets: HttpSecrets, *, guard: CallGuard | None = None) -> None:
        self.config = config
        self.endpoint = f"{config.url}/invoices"
        self._guard = guard or CallGuard("http", settings_from(config))
        self._client = _client(config, secrets, connections=2)

    async def fetch_page(self, cursor: str | None, limit: int) -> SourcePage:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        limit = min(limit, self.config.page_size)
        params = {"limit": str(limit)}
        if cursor is not None:
            params["since"] = cursor
        attempted = await self._guard.call("fetch", self.endpoint, lambda: self._get(params))
        return parse_page(
            attempted.value,
            endpoint=self.endpoint,
            cursor=cursor,
            limit=limit,
            max_document_bytes=self.config.max_document_bytes,
        )

    async def _get(self, params: dict[str, str]) -> bytes:
        cap = self.config.max_response_bytes
        deadline = _deadline(self.config)
        try:
            async with asyncio.timeout(deadline):
                async with self._client.stream(
                    "GET", self.endpoint, params=params, headers={"Accept": "application/json"}
                ) as response:
                    status = response.status_code
                    if _retryable_status(status):
                        raise RetryableFailure(
                            f"the source answered HTTP {status}",
                            status_code=status,
                            retry_after=parse_retry_after(
                                response.headers.get("retry-after"), now=self._guard.clock.now()
                            ),
                        )
                    if not 200 <= status < 300:
                        text = (await _read_prefix(response, 2000)).decode("utf-8", "replace")
                        raise _refusal(self.endpoint, status, response.headers, text, "source")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > cap:
                        body, too_large = b"", True  # refused before reading a byte of it
                    else:
                        body = await _read_prefix(response, cap + 1)
                        too_large = len(body) > cap
        except _TRANSIENT as exc:
            raise _transport_failure(exc, deadline) from exc
        if too_large:
            raise ExternalApiError(
                f"the source's page is larger than {cap} bytes; lower page_size or raise max_response_bytes",
                api_endpoint=self.endpoint,
                upstream_status=status,
                retryable=False,
            )
        return body

    async def aclose(self) -> None:
        await self._client.aclose()


# --------------------------------------------------------------------------------------------- destination


def _remote_id(body: bytes) -> str | None:
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    value = payload.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)[:_MAX_ID_CHARS] or None


class HttpDestination:
    def __init__(self, config: HttpConfig, secrets: HttpSecrets, *, guard: Callable[[], CallGuard]) -> None:
        """`guard` is called (once, inside the event loop) for the guard that this destination shares with the
        other destinations of the same partner, when a registry is in use."""
        self.config = config
        self.endpoint = f"{config.url}/invoices"
        self._guard_source = guard
        self._guard: CallGuard | None = None
        self._client = _client(config, secrets, connections=config.max_concurrency)

    @property
    def guard(self) -> CallGuard:
        if self._guard is None:
            self._guard = self._guard_source()
        return self._guard

    async def push(
        self, document: bytes, *, idempotency_key: str, filename: str, content_type: str = "application/xml"
    ) -> PushResult:
        check_idempotency_key(idempotency_key)
        guard = self.guard
        attempted = await guard.call(
            "push",
            self.endpoint,
            lambda: self._post(guard, document, idempotency_key, content_type),
            result_label=lambda result: result.outcome,
        )
        return dataclasses.replace(attempted.value, attempts=attempted.attempts)

    async def _post(self, guard: CallGuard, document: bytes, key: str, content_type: str) -> PushResult:
        headers = {"Content-Type": content_type, "Idempotency-Key": key, "Accept": "application/json"}
        deadline = _deadline(self.config)
        try:
            async with asyncio.timeout(deadline):
                async with self._client.stream("POST", self.endpoint, content=document, headers=headers) as response:
                    status = response.status_code
                    body = await _read_prefix(response, _DESTINATION_READ_BYTES)
        except _TRANSIENT as exc:
            raise _transport_failure(exc, deadline) from exc
        text = body.decode("utf-8", "replace")
        if _retryable_status(status):
            raise RetryableFailure(
                f"the destination answered HTTP {status}: {text[:200]}",
                status_code=status,
                retry_after=parse_retry_after(response.headers.get("retry-after"), now=guard.clock.now()),
            )
        if 200 <= status < 300:
            return PushResult("accepted", status, _remote_id(body), keep(text), 0)
        if status == 409:
            return PushResult("duplicate", status, _remote_id(body), keep(text), 0)
        if 400 <= status < 500 and status not in (401, 403, 407):
            return PushResult("rejected", status, None, keep(text), 0)
        raise _refusal(self.endpoint, status, response.headers, text, "destination")

    async def aclose(self) -> None:
        await self._client.aclose()
