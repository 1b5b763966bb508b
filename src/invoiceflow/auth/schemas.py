from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import EmailStr, Field, field_validator

from invoiceflow.core.schemas import CountryCode, CurrencyCode, InputModel, Name, OutputModel

Password = Annotated[str, Field(min_length=10, max_length=256)]


class RegisterRequest(InputModel):
    email: EmailStr
    password: Password
    name: Name
    organization_name: Name


class LoginRequest(InputModel):
    email: Annotated[str, Field(min_length=1, max_length=254)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class RefreshRequest(InputModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class LogoutRequest(InputModel):
    refresh_token: Annotated[str | None, Field(max_length=200)] = None


class PasswordResetRequest(InputModel):
    email: Annotated[str, Field(min_length=1, max_length=254)]


class PasswordResetConfirm(InputModel):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    new_password: Password


class TokenPair(OutputModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str


class UserRead(OutputModel):
    id: uuid.UUID
    email: str
    name: str
    role: str
    organization_id: uuid.UUID
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None


class UserCreate(InputModel):
    email: EmailStr
    password: Password
    name: Name
    role: Literal["admin", "member"] = "member"


class OrganizationBrief(OutputModel):
    id: uuid.UUID
    name: str


class MeRead(OutputModel):
    user: UserRead | None
    organization: OrganizationBrief
    role: str
    auth: Literal["token", "api_key"]
    api_key_id: uuid.UUID | None = None


class RegisterResult(OutputModel):
    user: UserRead
    organization: OrganizationBrief
    tokens: TokenPair


class ApiKeyCreate(InputModel):
    name: Name
    rate_limit_per_minute: Annotated[int | None, Field(ge=1, le=100_000)] = None
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a time zone, e.g. 2027-01-01T00:00:00Z")
        return value


class ApiKeyRead(OutputModel):
    id: uuid.UUID
    name: str
    prefix: str
    rate_limit_per_minute: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret. Shown once; store it now.")


NumberPattern = Annotated[str, Field(min_length=1, max_length=64)]


class OrganizationRead(OutputModel):
    id: uuid.UUID
    name: str
    legal_name: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    postal_code: str | None
    region: str | None
    country: str | None
    vat_id: str | None
    company_id: str | None
    email: str | None
    phone: str | None
    website: str | None
    iban: str | None
    bic: str | None
    electronic_address_scheme: str | None
    electronic_address: str | None
    default_currency: str
    payment_terms_days: int
    payment_terms_text: str | None
    invoice_number_pattern: str
    order_number_pattern: str
    credit_note_number_pattern: str
    reminder_policy: list[int]
    timezone: str
    created_at: datetime
    updated_at: datetime


class OrganizationUpdate(InputModel):
    name: Name | None = None
    legal_name: Annotated[str | None, Field(max_length=200)] = None
    address_line1: Annotated[str | None, Field(max_length=200)] = None
    address_line2: Annotated[str | None, Field(max_length=200)] = None
    city: Annotated[str | None, Field(max_length=100)] = None
    postal_code: Annotated[str | None, Field(max_length=20)] = None
    region: Annotated[str | None, Field(max_length=100)] = None
    country: CountryCode | None = None
    vat_id: Annotated[str | None, Field(max_length=30, pattern=r"^[A-Z]{2}[A-Za-z0-9+*.]{2,28}$")] = None
    company_id: Annotated[str | None, Field(max_length=50)] = None
    email: EmailStr | None = None
    phone: Annotated[str | None, Field(max_length=40)] = None
    website: Annotated[str | None, Field(max_length=200)] = None
    iban: Annotated[str | None, Field(max_length=34)] = None
    bic: Annotated[str | None, Field(pattern=r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")] = None
    electronic_address_scheme: Annotated[str | None, Field(pattern=r"^[0-9]{4}$")] = None
    electronic_address: Annotated[str | None, Field(max_length=100)] = None
    default_currency: CurrencyCode | None = None
    payment_terms_days: Annotated[int | None, Field(ge=0, le=365)] = None
    payment_terms_text: Annotated[str | None, Field(max_length=500)] = None
    invoice_number_pattern: NumberPattern | None = None
    order_number_pattern: NumberPattern | None = None
    credit_note_number_pattern: NumberPattern | None = None
    # Days from the due date (-3: three days before); an empty list sends no reminders.
    reminder_policy: Annotated[list[Annotated[int, Field(ge=-60, le=365)]] | None, Field(max_length=10)] = None
    timezone: Annotated[str | None, Field(min_length=1, max_length=64)] = None

    @field_validator("reminder_policy")
    @classmethod
    def _policy(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if len(set(value)) != len(value):
            raise ValueError("each offset may appear once")
        return sorted(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone name (e.g. Europe/Brussels)") from None
        return value

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str | None) -> str | None:
        if value is None:
            return None
        compact = value.replace(" ", "").upper()
        if not (15 <= len(compact) <= 34) or not compact[:2].isalpha() or not compact[2:4].isdigit():
            raise ValueError("not a valid IBAN")
        # ISO 13616: move the first four characters to the end, letters to numbers, mod 97 must be 1.
        rearranged = compact[4:] + compact[:4]
        if not rearranged.isalnum():
            raise ValueError("not a valid IBAN")
        digits = "".join(str(int(ch, 36)) for ch in rearranged)
        if int(digits) % 97 != 1:
            raise ValueError("IBAN checksum does not match")
        return compact


class PageQuery(InputModel):
    """`?limit=&cursor=` of a list with no filters."""

    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


class UserPage(OutputModel):
    items: list[UserRead]
    next_cursor: str | None
    limit: int


class ApiKeyPage(OutputModel):
    items: list[ApiKeyRead]
    next_cursor: str | None
    limit: int
