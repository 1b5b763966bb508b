from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, EmailStr, Field

from invoiceflow.core.schemas import Address, CountryCode, CurrencyCode, InputModel, Name, OutputModel


def _language(value: str) -> str:
    try:
        Locale.parse(value.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        raise ValueError("not a known language tag (e.g. en, fr, de-BE)") from None
    return value


Language = Annotated[
    str, Field(min_length=2, max_length=10, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z]{2})?$"), AfterValidator(_language)
]
VatId = Annotated[str, Field(min_length=4, max_length=30, pattern=r"^[A-Z]{2}[A-Za-z0-9+*.]{2,28}$")]
Scheme = Annotated[str, Field(pattern=r"^[0-9]{4}$", description="Peppol EAS code, e.g. 0208 or 9925")]


class ClientCreate(InputModel):
    name: Name
    email: EmailStr
    phone: Annotated[str | None, Field(max_length=40, pattern=r"^[0-9+() .\-/]*$")] = None
    address: Address
    shipping_address: Address | None = None
    vat_id: VatId | None = None
    company_id: Annotated[str | None, Field(max_length=50)] = None
    electronic_address_scheme: Scheme | None = None
    electronic_address: Annotated[str | None, Field(max_length=100)] = None
    currency: CurrencyCode | None = None
    language: Language = "en"
    notes: Annotated[str | None, Field(max_length=2000)] = None


class ClientUpdate(InputModel):
    name: Name | None = None
    email: EmailStr | None = None
    phone: Annotated[str | None, Field(max_length=40, pattern=r"^[0-9+() .\-/]*$")] = None
    address: Address | None = None
    shipping_address: Address | None = None
    vat_id: VatId | None = None
    company_id: Annotated[str | None, Field(max_length=50)] = None
    electronic_address_scheme: Scheme | None = None
    electronic_address: Annotated[str | None, Field(max_length=100)] = None
    currency: CurrencyCode | None = None
    language: Language | None = None
    notes: Annotated[str | None, Field(max_length=2000)] = None


class ClientFilters(InputModel):
    q: Annotated[str | None, Field(max_length=200)] = None
    country: CountryCode | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=500)] = None


class ClientRead(OutputModel):
    id: uuid.UUID
    name: str
    # null only for clients created by an e-invoice import whose buyer gave no email (BT-58).
    email: str | None
    phone: str | None
    address: dict[str, Any]
    shipping_address: dict[str, Any] | None
    country: str
    vat_id: str | None
    company_id: str | None
    electronic_address_scheme: str | None
    electronic_address: str | None
    currency: str | None
    language: str
    notes: str | None
    created_at: datetime
    updated_at: datetime


class ClientPage(OutputModel):
    items: list[ClientRead]
    next_cursor: str | None
    limit: int
