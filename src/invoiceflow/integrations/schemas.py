from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from invoiceflow.core.schemas import InputModel, OutputModel

ConnectorType = Literal["http", "folder", "s3", "invoiceflow"]
JobStatus = Literal["queued", "running", "completed", "completed_with_errors", "failed", "cancelled"]
JobType = Literal["manual", "scheduled"]
ItemOutcome = Literal["pushing", "sent", "duplicate", "invalid", "failed", "changed"]

HeaderName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")]
HeaderValue = Annotated[str, Field(max_length=4000, pattern=r"^[\x20-\x7e\t]*$")]
SourceId = Annotated[str, Field(min_length=1, max_length=255)]


def _cron(value: str) -> str:
    if not croniter.is_valid(value) or len(value.split()) != 5:
        raise ValueError('not a five-field cron expression (e.g. "0 2 * * *")')
    return value


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone (e.g. Europe/Brussels)") from None
    return value


Cron = Annotated[str, Field(max_length=100, examples=["0 2 * * *"]), AfterValidator(_cron)]
TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_timezone)]


class ConnectorIn(BaseModel):
    """One side of an integration: `type` and that kind's settings (see `integrations.connectors`):

    * `http`: `url` (the protocol's routes are `{url}/invoices`), `headers` (e.g. `Authorization`),
      `bearer_token`, `api_key` (sent in `api_key_header`, default `X-API-Key`), `page_size`;
    * `folder`: `path`, relative to the organisation's integration folder (`{data_dir}/integrations/{org id}`);
    * `s3`: `bucket`, `prefix`, `endpoint_url`, `region`, `access_key_id`, `secret_access_key`, `session_token`;
    * `invoiceflow`: this organisation's own invoices (as a source: issued invoices as UBL; as a
      destination: imported as invoices);

    and for every kind the resilience settings `timeout_seconds`, `max_concurrency`, `rate_limit_per_second`,
    `rate_limit_burst`, `max_attempts`, `retry_base_delay_seconds`, `retry_max_delay_seconds`,
    `max_retry_after_seconds`, `circuit_failure_threshold`, `circuit_reset_seconds`, `max_document_bytes`.

    Header values, tokens and keys are write-only: answers show them masked. Sending a masked value back
    (as an answer showed it) keeps the stored one.
    """

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    type: ConnectorType
    headers: Annotated[dict[HeaderName, HeaderValue], Field(max_length=20)] = Field(default_factory=dict)
    bearer_token: Annotated[str | None, Field(min_length=1, max_length=4000)] = None
    api_key: Annotated[str | None, Field(min_length=1, max_length=4000)] = None
    access_key_id: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    secret_access_key: Annotated[str | None, Field(min_length=1, max_length=500)] = None
    session_token: Annotated[str | None, Field(min_length=1, max_length=4000)] = None

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class IntegrationCreate(InputModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    description: Annotated[str | None, Field(max_length=500)] = None
    source: ConnectorIn
    destination: ConnectorIn
    schedule: Cron | None = Field(default=None, description="Cron (5 fields) in `timezone`; null = manual only")
    timezone: TimeZone = "Europe/Brussels"
    enabled: bool = True
    is_default: bool = False
    notify_on_success: bool = False
    page_size: Annotated[int, Field(ge=1, le=500)] = 100


class IntegrationUpdate(InputModel):
    name: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    description: Annotated[str | None, Field(max_length=500)] = None
    source: ConnectorIn | None = None
    destination: ConnectorIn | None = None
    schedule: Cron | None = None
    timezone: TimeZone | None = None
    enabled: bool | None = None
    is_default: bool | None = None
    notify_on_success: bool | None = None
    page_size: Annotated[int | None, Field(ge=1, le=500)] = None
    reset_cursor: bool = Field(default=False, description="Start the next job from the source's beginning")


class IntegrationFilters(InputModel):
    enabled: bool | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


class IntegrationRead(OutputModel):
    id: uuid.UUID
    name: str
    description: str | None
    source: dict[str, Any] = Field(description="Secrets masked")
    destination: dict[str, Any] = Field(description="Secrets masked")
    schedule: str | None
    timezone: str
    enabled: bool
    is_default: bool
    notify_on_success: bool
    page_size: int
    cursor: str | None
    active_job_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class IntegrationPage(OutputModel):
    items: list[IntegrationRead]
    next_cursor: str | None
    limit: int


class ProcessRequest(InputModel):
    force_processing: bool = False
    invoice_ids: Annotated[list[SourceId] | None, Field(max_length=1000)] = Field(
        default=None, description="Source document ids to process; omitted = everything new"
    )


class ProcessQuery(InputModel):
    integration_id: uuid.UUID | None = None


class JobFilters(InputModel):
    status: JobStatus | None = None
    integration_id: uuid.UUID | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


class JobItemFilters(InputModel):
    outcome: ItemOutcome | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    cursor: Annotated[str | None, Field(max_length=500)] = None


class JobResults(OutputModel):
    total_invoices: int
    processed: int = Field(description="Sent and accepted by the destination")
    failed: int
    duplicates: int
    invalid: int
    changed: int = Field(description="Same supplier and number as an invoice sent before, other content")


class JobError(OutputModel):
    invoice_id: str = Field(description="The source's id of the document")
    error: str
    outcome: ItemOutcome
    rule_ids: list[str] | None = None
    timestamp: datetime


class JobRead(OutputModel):
    job_id: uuid.UUID
    integration_id: uuid.UUID
    job_type: JobType
    trigger: str
    status: JobStatus
    force_processing: bool
    invoice_ids: list[str] | None
    workflow_id: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    cancel_requested_at: datetime | None = Field(
        description="When a user asked to stop the job (POST /jobs/{job_id}/cancel); null = never"
    )
    duration_seconds: float | None
    results: JobResults
    error: str | None
    errors: list[JobError] = Field(default_factory=list, description="Per invoice (the first 100)")


class JobStarted(JobRead):
    estimated_completion_at: datetime


class JobPage(OutputModel):
    items: list[JobRead]
    next_cursor: str | None
    limit: int


class JobItemRead(OutputModel):
    id: uuid.UUID
    source_id: str
    page_no: int
    supplier_key: str | None
    invoice_number: str | None
    document_sha256: str | None
    outcome: ItemOutcome
    rule_ids: list[str] | None
    error: str | None
    status_code: int | None
    remote_id: str | None
    response: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime


class JobItemPage(OutputModel):
    items: list[JobItemRead]
    next_cursor: str | None
    limit: int
