"""Pydantic building blocks shared by every domain's schemas."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from invoiceflow.core.money import is_country, is_currency


class InputModel(BaseModel):
    """Request bodies and filters: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # NUL cannot be stored in PostgreSQL text and has no place in an invoice.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class OutputModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _to_decimal(value: Any) -> Any:
    # Floats are refused: 0.1 as a float is not 0.1, and money must never pass through one.
    if isinstance(value, bool | float):
        raise ValueError('send numbers as decimal strings, e.g. "12.50"')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise ValueError("number too long")
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise ValueError("not a decimal number") from None
        if not dec.is_finite():
            raise ValueError("not a finite number")
        return dec
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("not a finite number")
        return value
    raise ValueError("expected a decimal string")


def _max_places(places: int) -> AfterValidator:
    def check(value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -places:
            normalized = value.normalize()
            exp2 = normalized.as_tuple().exponent
            if isinstance(exp2, int) and exp2 < -places:
                raise ValueError(f"at most {places} decimal places")
            return normalized
        return value

    return AfterValidator(check)


def _decimal_out(value: Decimal) -> str:
    return str(value)


_DEC_SCHEMA = WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["12.50"]})

Quantity = Annotated[
    Decimal, BeforeValidator(_to_decimal), _max_places(6), Field(gt=0, le=Decimal("1000000000")), _DEC_SCHEMA
]
UnitPrice = Annotated[
    Decimal, BeforeValidator(_to_decimal), _max_places(6), Field(ge=0, le=Decimal("1000000000")), _DEC_SCHEMA
]
VatRate = Annotated[Decimal, BeforeValidator(_to_decimal), _max_places(2), Field(ge=0, le=100), _DEC_SCHEMA]
AmountIn = Annotated[
    Decimal, BeforeValidator(_to_decimal), _max_places(4), Field(ge=0, le=Decimal("100000000000")), _DEC_SCHEMA
]
DecimalOut = Annotated[Decimal, PlainSerializer(_decimal_out, return_type=str), _DEC_SCHEMA]


def _currency(value: str) -> str:
    code = value.upper()
    if not is_currency(code):
        raise ValueError("not an ISO 4217 currency code")
    return code


def _country(value: str) -> str:
    code = value.upper()
    if not is_country(code):
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code


CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_currency)]
CountryCode = Annotated[str, Field(min_length=2, max_length=2), AfterValidator(_country)]

ShortText = Annotated[str, Field(max_length=200)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Address(InputModel):
    line1: Annotated[str | None, Field(max_length=200)] = None
    line2: Annotated[str | None, Field(max_length=200)] = None
    city: Annotated[str | None, Field(max_length=100)] = None
    postal_code: Annotated[str | None, Field(max_length=20)] = None
    region: Annotated[str | None, Field(max_length=100)] = None
    country: CountryCode
