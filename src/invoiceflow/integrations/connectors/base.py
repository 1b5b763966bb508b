"""The connector interface: a source yields pages of e-invoice documents, a destination receives them one by one.

Connectors know nothing of organisations, jobs or the database: the job drives them, records every page before it
stores the page's cursor, and decides what an outcome means. Everything a connector cannot do because the other
system is unreachable, overloaded or answering nonsense surfaces as `ExternalApiError`, which the API renders as
503 `EXTERNAL_API_ERROR` with `details: {api_endpoint, status_code, retry_count, next_retry_at}` (DESIGN.md).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from invoiceflow.core.errors import AppError

DocumentFormat = Literal["ubl", "cii"]
PushOutcome = Literal["accepted", "duplicate", "rejected"]

RESPONSE_KEEP_CHARS = 2000
"""How much of a partner's answer a `PushResult` keeps (and the job records)."""
DEFAULT_MAX_DOCUMENT_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SourceDocument:
    source_id: str
    """The source's own id of the document: the HTTP `id`, or the path/key relative to the folder or prefix."""
    format: str
    """"ubl" or "cii" (for folder/S3 sources, read from the root element; "ubl" when the file does not parse,
    so that validation reports the real problem for that one document instead of blocking the source)."""
    content: bytes


@dataclass(frozen=True, slots=True)
class SourcePage:
    documents: list[SourceDocument]
    next_cursor: str | None
    """The cursor to store once every document of this page is recorded. An empty page means caught up; its
    cursor is then the one given (or past entries that are not documents, such as non-XML files)."""


class Source(Protocol):
    async def fetch_page(self, cursor: str | None, limit: int) -> SourcePage: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PushResult:
    outcome: PushOutcome
    status_code: int | None
    remote_id: str | None
    response: str
    """The partner's answer (body or a description), truncated to `RESPONSE_KEEP_CHARS`."""
    attempts: int
    """Attempts made; a "duplicate" after more than one attempt usually means an earlier attempt was received
    but its answer was lost (the same Idempotency-Key was sent again)."""


class Destination(Protocol):
    async def push(
        self, document: bytes, *, idempotency_key: str, filename: str, content_type: str = "application/xml"
    ) -> PushResult: ...

    async def aclose(self) -> None: ...


def keep(text: str) -> str:
    return text[:RESPONSE_KEEP_CHARS]


def check_idempotency_key(key: str) -> str:
    """Keys travel in an HTTP header and in S3 metadata: printable ASCII, bounded."""
    if not key or len(key) > 255 or not key.isascii() or not key.isprintable():
        raise ValueError("idempotency_key must be 1-255 printable ASCII characters")
    return key


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_FILENAME_CHARS = 200


def safe_filename(filename: str, *, fallback: str) -> str:
    """A file or object name that cannot leave its folder or prefix: the last path segment only, ASCII letters,
    digits, `._-` (others become `_`), no leading dot, at most 200 characters, `.xml` added when there is no
    extension. `fallback` (e.g. the idempotency key) is used when nothing is left of `filename`."""

    def clean(text: str) -> str:
        last = re.split(r"[\\/]", text)[-1]
        ascii_text = unicodedata.normalize("NFKD", last).encode("ascii", "ignore").decode()
        return _UNSAFE_NAME_CHARS.sub("_", ascii_text).strip("._-")

    name = clean(filename) or clean(fallback) or "document"
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, "xml"
    extension = extension[:16]
    stem = stem[: _MAX_FILENAME_CHARS - len(extension) - 1]
    return f"{stem}.{extension}"


def iso_utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ExternalApiError(AppError):
    """Another system could not be used: retries exhausted, circuit open, refused credentials or a malformed
    answer. `retryable` tells the job whether trying again later may help (False for refused credentials,
    malformed answers and misconfiguration); `next_retry_at` is the earliest moment worth trying, when known."""

    status_code = 503
    code = "EXTERNAL_API_ERROR"

    def __init__(
        self,
        message: str,
        *,
        api_endpoint: str,
        upstream_status: int | None = None,
        retry_count: int = 0,
        next_retry_at: datetime | None = None,
        retryable: bool = True,
    ) -> None:
        headers: dict[str, str] = {}
        if next_retry_at is not None:
            wait = max(0, int((next_retry_at - datetime.now(UTC)).total_seconds() + 0.999))
            headers["Retry-After"] = str(wait)
        super().__init__(
            message,
            details={
                "api_endpoint": api_endpoint,
                "status_code": upstream_status,
                "retry_count": retry_count,
                "next_retry_at": iso_utc(next_retry_at),
            },
            headers=headers,
        )
        self.api_endpoint = api_endpoint
        self.upstream_status = upstream_status
        self.retry_count = retry_count
        self.next_retry_at = next_retry_at
        self.retryable = retryable


# --------------------------------------------------------------------------------------------- settings


class ConnectorOptions(BaseModel):
    """Settings every connector kind accepts (all optional). Unknown keys are refused, so a typo in an
    integration's settings fails when it is saved instead of being silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrency: int = Field(4, ge=1, le=64)
    rate_limit_per_second: float | None = Field(None, gt=0)
    rate_limit_burst: float | None = Field(None, ge=1)
    max_attempts: int = Field(5, ge=1, le=20)
    retry_base_delay_seconds: float = Field(0.5, ge=0, le=60)
    retry_max_delay_seconds: float = Field(30.0, ge=0, le=3600)
    max_retry_after_seconds: float = Field(120.0, ge=0, le=86400)
    circuit_failure_threshold: int = Field(5, ge=1, le=1000)
    circuit_reset_seconds: float = Field(30.0, ge=0, le=3600)
    timeout_seconds: float = Field(10.0, gt=0, le=300)
    max_document_bytes: int = Field(DEFAULT_MAX_DOCUMENT_BYTES, ge=1024, le=100 * 1024 * 1024)
