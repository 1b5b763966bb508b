"""Money rules: Decimal only, half-up rounding to the currency's minor unit. All rounding lives here."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import pycountry
from babel.numbers import get_currency_precision

ZERO = Decimal("0")
HUNDRED = Decimal("100")

# Codes that ISO 4217 lists but that are not money anyone invoices in (funds, metals, testing).
_NON_TENDER = {"XAU", "XAG", "XPD", "XPT", "XTS", "XXX", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA"}


@lru_cache(maxsize=1)
def _currency_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NON_TENDER


@lru_cache(maxsize=1)
def _country_codes() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


def is_currency(code: str) -> bool:
    return code in _currency_codes()


def is_country(code: str) -> bool:
    return code in _country_codes()


@lru_cache(maxsize=512)
def minor_unit(currency: str) -> int:
    """Number of decimals of the currency (EUR 2, JPY 0, BHD 3)."""
    return int(get_currency_precision(currency))


@lru_cache(maxsize=1)
def unusual_minor_units() -> dict[str, int]:
    """Every known currency whose minor unit is not 2 decimals, for SQL that formats amounts itself."""
    return {code: places for code in sorted(_currency_codes()) if (places := minor_unit(code)) != 2}


@lru_cache(maxsize=512)
def money_quantum(currency: str) -> Decimal:
    """The currency's smallest unit as a Decimal exponent (EUR 0.01, JPY 1, BHD 0.001)."""
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(value: Decimal, currency: str) -> Decimal:
    """Round half-up (away from zero on .5) to the currency's minor unit."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal, got {type(value).__name__}")
    return value.quantize(money_quantum(currency), rounding=ROUND_HALF_UP)


def format_amount(value: Decimal, currency: str) -> str:
    """The API's decimal string: always the currency's number of decimals."""
    return str(round_money(value, currency))


def trim(value: Decimal, min_places: int = 0) -> Decimal:
    """Drop trailing zeros beyond `min_places` (quantities "2", unit prices "0.125" or "49.90")."""
    quantum = Decimal(1).scaleb(-min_places)
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -min_places:
        return value.quantize(quantum)
    return normalized
