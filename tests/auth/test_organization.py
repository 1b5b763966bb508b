"""The organisation's seller profile: defaults, validated updates, tenancy."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from invoiceflow.core.models import Organization
from tests.auth.helpers import API, audits, err, events, ok, row, table
from tests.factories import register

VALID_UPDATE = {
    "legal_name": "Acme Belgium BV",
    "address_line1": "Rue de la Loi 16",
    "city": "Brussels",
    "postal_code": "1000",
    "country": "be",
    "vat_id": "BE0123456789",
    "iban": "BE71 0961 2345 6769",
    "bic": "GKCCBEBB",
    "payment_terms_days": 14,
    "payment_terms_text": "Payable within 14 days.",
    "invoice_number_pattern": "F{YY}-{SEQ:04}",
    "default_currency": "usd",
    "reminder_policy": [0, 10],
}


def test_new_organization_has_defaults(client: TestClient) -> None:
    acct = register(client, org="Default Org")
    org = ok(client.get(f"{API}/organization", headers=acct.headers))
    assert org["id"] == acct.organization_id
    assert org["name"] == "Default Org"
    assert org["legal_name"] == "Default Org"
    assert org["invoice_number_pattern"] == "INV-{YYYY}-{SEQ:05}"
    assert org["order_number_pattern"] == "ORD-{YYYY}-{SEQ:05}"
    assert org["default_currency"] == "EUR"
    assert org["payment_terms_days"] == 30
    assert org["reminder_policy"] == [-3, 0, 7, 14]
    for field in ("address_line1", "city", "country", "vat_id", "iban", "bic", "payment_terms_text"):
        assert org[field] is None, field


def test_patch_persists_valid_fields(client: TestClient, db: Engine) -> None:
    acct = register(client, org="Acme BV")
    patched = ok(client.patch(f"{API}/organization", json=VALID_UPDATE, headers=acct.headers))
    expected = {
        **VALID_UPDATE,
        "country": "BE",
        "iban": "BE71096123456769",  # stored compact
        "default_currency": "USD",
    }
    for field, value in expected.items():
        assert patched[field] == value, field
    assert patched["name"] == "Acme BV"  # untouched fields stay

    again = ok(client.get(f"{API}/organization", headers=acct.headers))
    assert again == patched
    orgs = table(Organization)
    stored = row(db, orgs, orgs.c.id == uuid.UUID(acct.organization_id))
    assert stored.iban == "BE71096123456769"
    assert stored.bic == "GKCCBEBB"
    assert stored.country == "BE"
    assert stored.payment_terms_days == 14
    assert stored.invoice_number_pattern == "F{YY}-{SEQ:04}"
    assert stored.updated_at >= stored.created_at

    (event,) = events(db, acct.organization_id, "OrganizationUpdated")
    assert event.resource_id == acct.organization_id
    assert event.payload == {"changed": sorted(VALID_UPDATE)}
    (audit,) = audits(db, acct.organization_id, "organization.update")
    assert audit.details == {"changed": sorted(VALID_UPDATE)}
    assert audit.actor_user_id == uuid.UUID(acct.user_id)


def test_patch_can_clear_optional_fields(client: TestClient) -> None:
    acct = register(client)
    ok(client.patch(f"{API}/organization", json={"iban": "BE71096123456769", "bic": "GKCCBEBB"}, headers=acct.headers))
    cleared = ok(client.patch(f"{API}/organization", json={"iban": None, "bic": None}, headers=acct.headers))
    assert cleared["iban"] is None
    assert cleared["bic"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"iban": "BE71096123456768"}, "iban"),  # checksum off by one
        ({"iban": "NOT AN IBAN"}, "iban"),
        ({"country": "XX"}, "country"),
        ({"default_currency": "ABC"}, "default_currency"),
        ({"default_currency": "EURO"}, "default_currency"),
        ({"invoice_number_pattern": "INV-{YYYY}"}, "invoice_number_pattern"),  # no {SEQ}
        ({"invoice_number_pattern": "INV-{SEQ}-{SEQ}"}, "invoice_number_pattern"),
        ({"order_number_pattern": "ORD {SEQ}"}, "order_number_pattern"),  # space is not an allowed literal
        ({"bic": "GKCC BE BB"}, "bic"),
        ({"vat_id": "123"}, "vat_id"),
        ({"payment_terms_days": 400}, "payment_terms_days"),
        ({"name": None}, "name"),
        ({"default_currency": None}, "default_currency"),
        ({"email": "nope"}, "email"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_patch_rejects_invalid_values_naming_the_field(
    client: TestClient, db: Engine, body: dict[str, Any], field: str
) -> None:
    acct = register(client, org="Stable Org")
    before = ok(client.get(f"{API}/organization", headers=acct.headers))
    r = client.patch(f"{API}/organization", json=body, headers=acct.headers)
    error = err(r, 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == [field]
    assert field in error["message"]
    assert ok(client.get(f"{API}/organization", headers=acct.headers)) == before
    assert events(db, acct.organization_id, "OrganizationUpdated") == []


def test_organizations_are_isolated(client: TestClient) -> None:
    alice = register(client, org="Alice BV")
    bob = register(client, org="Bob NV")
    ok(client.patch(f"{API}/organization", json={"legal_name": "Alice Holding BV"}, headers=alice.headers))
    bobs = ok(client.get(f"{API}/organization", headers=bob.headers))
    assert bobs["id"] == bob.organization_id
    assert bobs["legal_name"] == "Bob NV"


def test_organization_needs_authentication(client: TestClient) -> None:
    err(client.get(f"{API}/organization"), 401, "UNAUTHORIZED")
    err(client.patch(f"{API}/organization", json={"legal_name": "x"}), 401, "UNAUTHORIZED")
