from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from invoiceflow.core.schemas import InputModel, OutputModel
from invoiceflow.webhooks.guard import MAX_URL_LENGTH

EventType = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Z][A-Za-z0-9]+$")]
EventTypes = Annotated[list[EventType], Field(max_length=100, description="Event types to deliver; empty = all")]
Url = Annotated[str, Field(min_length=8, max_length=MAX_URL_LENGTH, examples=["https://example.com/hooks/invoiceflow"])]
Description = Annotated[str | None, Field(max_length=500)]
Secret = Annotated[
    str,
    Field(
        min_length=16,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Signing secret; generated when not given. Printable ASCII, no spaces.",
    ),
]
DeliveryStatus = Literal["pending", "succeeded", "failed", "dead"]


class WebhookCreate(InputModel):
    url: Url
    description: Description = None
    event_types: EventTypes = Field(default_factory=list)
    secret: Secret | None = None
    enabled: bool = True


class WebhookUpdate(InputModel):
    url: Url | None = None
    description: Description = None
    event_types: EventTypes | None = None
    enabled: bool | None = None


class WebhookFilters(InputModel):
    enabled: bool | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


class WebhookRead(OutputModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    secret: str = Field(description="Masked, except in the answers to create and rotate-secret")
    created_at: datetime
    updated_at: datetime


class WebhookPage(OutputModel):
    items: list[WebhookRead]
    next_cursor: str | None
    limit: int


class DeliveryFilters(InputModel):
    status: DeliveryStatus | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


class DeliveryRead(OutputModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_response: str | None
    last_error: str | None
    last_duration_ms: int | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(OutputModel):
    items: list[DeliveryRead]
    next_cursor: str | None
    limit: int
