from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from invoiceflow.auth.models import AuthSession, User
from invoiceflow.core.models import Organization
from tests.auth.helpers import API, audits, count, err, error_fields, events, ok, row, table
from tests.conftest import unique_email
from tests.factories import PASSWORD, register


def _body(**overrides: Any) -> dict[str, Any]:
    body = {"email": unique_email(), "password": PASSWORD, "name": "Ada Admin", "organization_name": "Acme BV"}
    body.update(overrides)
    return body


def test_register_answers_201_envelope_and_makes_an_admin(client: TestClient, db: Engine) -> None:
    body = _body(email="Ada.Lovelace@Example.COM")
    headers = {"X-Correlation-ID": "reg-test-1", "User-Agent": "pytest-agent/1.0"}
    r = client.post(f"{API}/auth/register", json=body, headers=headers)
    data = ok(r, 201)
    assert r.headers["X-Correlation-ID"] == "reg-test-1"
    assert r.json()["correlation_id"] == "reg-test-1"

    user, org, tokens = data["user"], data["organization"], data["tokens"]
    assert user["email"] == "ada.lovelace@example.com"
    assert user["role"] == "admin"
    assert user["name"] == "Ada Admin"
    assert user["is_active"] is True
    assert user["organization_id"] == org["id"]
    assert org["name"] == "Acme BV"
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert tokens["token_type"] == "bearer"
    assert "password" not in r.text
    assert PASSWORD not in r.text

    users = table(User)
    stored = row(db, users, users.c.id == uuid.UUID(user["id"]))
    assert stored.role == "admin"
    assert stored.email == "ada.lovelace@example.com"
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    orgs = table(Organization)
    assert row(db, orgs, orgs.c.id == uuid.UUID(org["id"])).name == "Acme BV"
    sessions = table(AuthSession)
    assert count(db, sessions, sessions.c.user_id == uuid.UUID(user["id"])) == 1

    (event,) = events(db, org["id"], "UserRegistered")
    assert event.resource_type == "user"
    assert event.resource_id == user["id"]
    assert event.payload == {"user_id": user["id"], "email": "ada.lovelace@example.com", "organization_id": org["id"]}
    (audit,) = audits(db, org["id"], "user.register")
    assert audit.actor_user_id == uuid.UUID(user["id"])
    assert audit.resource_id == user["id"]
    assert audit.user_agent == "pytest-agent/1.0"
    assert audit.ip_address == "testclient"  # the TestClient's peer address

    # The tokens returned at registration are live.
    me = ok(client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}))
    assert me["user"]["id"] == user["id"]


def test_register_generates_a_correlation_id_when_none_or_a_bad_one_is_sent(client: TestClient) -> None:
    r = client.post(f"{API}/auth/register", json=_body(), headers={"X-Correlation-ID": "bad id with spaces"})
    ok(r, 201)
    assert r.headers["X-Correlation-ID"] != "bad id with spaces"
    assert len(r.headers["X-Correlation-ID"]) == 32


def test_register_duplicate_email_is_409_even_with_other_case(client: TestClient, db: Engine) -> None:
    acct = register(client)
    r = client.post(f"{API}/auth/register", json=_body(email=acct.email.upper(), organization_name="Other"))
    error = err(r, 409, "EMAIL_TAKEN")
    assert error["details"] == {"field": "email"}
    # The refused registration left nothing behind: one user, one organisation.
    assert count(db, table(User)) == 1
    assert count(db, table(Organization)) == 1


@pytest.mark.parametrize(
    ("overrides", "field", "error_type"),
    [
        ({"email": "not-an-email"}, "email", "value_error"),
        ({"password": "short-pw9"}, "password", "string_too_short"),
        ({"name": ""}, "name", "string_too_short"),
        ({"organization_name": None}, "organization_name", "string_type"),
        ({"role": "admin"}, "role", "extra_forbidden"),
    ],
)
def test_register_invalid_input_is_422_naming_the_field(
    client: TestClient, db: Engine, overrides: dict[str, Any], field: str, error_type: str
) -> None:
    r = client.post(f"{API}/auth/register", json=_body(**overrides))
    error = err(r, 422, "VALIDATION_ERROR")
    assert [(f["field"], f["type"]) for f in error["details"]["fields"]] == [(field, error_type)]
    assert field in error["message"]
    assert count(db, table(User)) == 0


def test_register_missing_fields_are_each_named(client: TestClient) -> None:
    r = client.post(f"{API}/auth/register", json={"email": unique_email()})
    assert error_fields(r) == {"password", "name", "organization_name"}
    assert {f["type"] for f in r.json()["error"]["details"]["fields"]} == {"missing"}


def test_register_malformed_json_is_400_in_the_envelope(client: TestClient, db: Engine) -> None:
    r = client.post(
        f"{API}/auth/register", content=b'{"email": "a@example.com", ', headers={"Content-Type": "application/json"}
    )
    error = err(r, 400, "MALFORMED_JSON")
    assert error["details"]["reason"]
    assert count(db, table(User)) == 0
