"""Signed download links: valid until they expire, worthless once any byte is changed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from invoiceflow.core.errors import AppError
from invoiceflow.core.signing import (
    DownloadLinkExpired,
    DownloadLinkInvalid,
    SignedDownload,
    sign_download,
    verify_download,
)

SECRET = "test-secret-key-" + "x" * 32
ORG = uuid.UUID("0b5f4a52-3c43-4c8e-9d0c-6f0d1c0e2a11")
OTHER_ORG = uuid.UUID("5a6b7c8d-0000-4000-8000-00000000beef")
KEY = f"orgs/{ORG}/invoices/7d1e2f30-8a4b-4c5d-9e6f-a0b1c2d3e4f5/invoice-0123456789abcdef.pdf"
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(minutes=15)
FILENAME = "Facture INV-2026-00001 é.pdf"


def token(**overrides: object) -> str:
    values: dict[str, object] = {
        "organization_id": ORG,
        "key": KEY,
        "expires_at": EXPIRES,
        "filename": FILENAME,
    }
    values.update(overrides)
    return sign_download(SECRET, **values)  # type: ignore[arg-type]


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assert_invalid(value: str, *, now: datetime = NOW, secret: str = SECRET) -> None:
    with pytest.raises(DownloadLinkInvalid) as failure:
        verify_download(secret, value, now=now)
    assert type(failure.value) is DownloadLinkInvalid
    assert (failure.value.status_code, failure.value.code) == (403, "DOWNLOAD_LINK_INVALID")


def test_a_valid_token_grants_its_file_until_it_expires() -> None:
    value = token()

    grant = verify_download(SECRET, value, now=NOW)

    assert grant == SignedDownload(organization_id=ORG, key=KEY, expires_at=EXPIRES, filename=FILENAME)
    assert verify_download(SECRET, value, now=EXPIRES - timedelta(seconds=1)) == grant
    # Pasted into a URL as is: no character needs escaping.
    assert all(c.isalnum() or c in "-_." for c in value)


def test_expiry_is_rounded_down_to_the_second() -> None:
    grant = verify_download(SECRET, token(expires_at=EXPIRES + timedelta(microseconds=999_999)), now=NOW)
    assert grant.expires_at == EXPIRES


def test_expiry_in_another_time_zone_is_the_same_instant() -> None:
    brussels_winter = EXPIRES.astimezone(timezone(timedelta(hours=1)))
    assert verify_download(SECRET, token(expires_at=brussels_winter), now=NOW).expires_at == EXPIRES


@pytest.mark.parametrize("now", [EXPIRES, EXPIRES + timedelta(seconds=1), EXPIRES + timedelta(days=400)])
def test_an_expired_token_is_refused_with_its_own_code(now: datetime) -> None:
    with pytest.raises(DownloadLinkExpired) as failure:
        verify_download(SECRET, token(), now=now)
    assert isinstance(failure.value, DownloadLinkInvalid)
    assert isinstance(failure.value, AppError)
    assert (failure.value.status_code, failure.value.code) == (403, "DOWNLOAD_LINK_EXPIRED")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("o", str(OTHER_ORG)),
        ("k", KEY.replace(str(ORG), str(OTHER_ORG))),
        ("k", "orgs/../../etc/passwd"),
        ("e", int((EXPIRES + timedelta(days=365)).timestamp())),
        ("f", "other.pdf"),
        ("v", 2),
    ],
)
def test_changing_any_signed_field_invalidates_the_token(field: str, value: object) -> None:
    body, signature = token().split(".")
    payload = json.loads(b64decode(body))
    payload[field] = value
    forged = b64encode(json.dumps(payload, separators=(",", ":")).encode()) + "." + signature

    assert_invalid(forged)


def test_changing_any_character_invalidates_the_token() -> None:
    value = token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, char in enumerate(value):
        if char == ".":
            continue
        # Every other character of the alphabet, including ones that differ only in base64's unused bits.
        for replacement in (alphabet[(alphabet.index(char) + 1) % 64], alphabet[alphabet.index(char) ^ 1]):
            if replacement != char:
                assert_invalid(value[:i] + replacement + value[i + 1 :])


def test_a_truncated_token_is_invalid() -> None:
    value = token()
    body, signature = value.split(".")
    for cut in (value[:-1], value[:-4], value[: len(value) // 2], body, body + ".", "." + signature, signature):
        assert_invalid(cut)
    assert_invalid(value + "A")
    assert_invalid(value + ".extra")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        "..",
        "not-a-token",
        "a.b",
        "a.b.c",
        "ä.ö",
        "%2E%2E",
        " " + "x" * 10,
        "x" * 5000,
        "eyJ2IjoxfQ.AAAA",
    ],
)
def test_garbage_is_invalid(garbage: str) -> None:
    assert_invalid(garbage)


def test_a_token_signed_with_another_secret_is_invalid() -> None:
    assert_invalid(token(), secret="another-secret-" + "y" * 32)


def test_the_link_key_is_derived_for_this_purpose_only() -> None:
    # A MAC made with the raw secret key (e.g. by code that signs something else with it) is refused.
    body = token().split(".")[0]
    raw = b64encode(hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest())
    assert_invalid(f"{body}.{raw}")


def test_a_link_for_another_organisation_is_refused_by_the_owner_check() -> None:
    grant = verify_download(SECRET, token(), now=NOW)

    grant.require_organization(ORG)
    with pytest.raises(DownloadLinkInvalid) as failure:
        grant.require_organization(OTHER_ORG)
    assert failure.value.status_code == 403


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        token(expires_at=EXPIRES.replace(tzinfo=None))
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_download(SECRET, token(), now=NOW.replace(tzinfo=None))


def test_an_empty_secret_key_is_refused() -> None:
    with pytest.raises(ValueError, match="secret key"):
        sign_download("", organization_id=ORG, key=KEY, expires_at=EXPIRES, filename=FILENAME)
