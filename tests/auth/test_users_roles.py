"""Admins create users; members are kept out of the admin routes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from invoiceflow.auth.models import User
from invoiceflow.core.idempotency import fingerprint
from invoiceflow.core.models import IdempotencyRecord
from tests.auth.helpers import API, audits, bearer, count, err, events, login, ok, row, table
from tests.conftest import unique_email
from tests.factories import PASSWORD, Account, register


def _create_member(client: TestClient, admin: Account, **overrides: Any) -> dict[str, Any]:
    body = {"email": unique_email("member"), "password": PASSWORD, "name": "Max Member", **overrides}
    data: dict[str, Any] = ok(client.post(f"{API}/users", json=body, headers=admin.headers), 201)
    return data


def test_admin_creates_a_member_who_can_log_in(client: TestClient, db: Engine) -> None:
    admin = register(client)
    member = _create_member(client, admin)
    assert member["role"] == "member"
    assert member["organization_id"] == admin.organization_id
    assert "password" not in member
    assert "password_hash" not in member

    users = table(User)
    assert row(db, users, users.c.id == uuid.UUID(member["id"])).organization_id == uuid.UUID(admin.organization_id)
    (event,) = events(db, admin.organization_id, "UserCreated")
    assert event.payload == {"user_id": member["id"], "email": member["email"], "role": "member"}
    (audit,) = audits(db, admin.organization_id, "user.create")
    assert audit.actor_user_id == uuid.UUID(admin.user_id)

    tokens = login(client, member["email"])
    me = ok(client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"])))
    assert me["role"] == "member"
    assert me["organization"]["id"] == admin.organization_id

    listed = ok(client.get(f"{API}/users", headers=admin.headers))
    assert [u["email"] for u in listed["items"]] == [admin.email, member["email"]]  # oldest first
    assert listed["next_cursor"] is None


def test_create_user_refuses_duplicates_and_bad_input(client: TestClient, db: Engine) -> None:
    admin = register(client)
    other_org = register(client)
    r = client.post(
        f"{API}/users",
        json={"email": other_org.email, "password": PASSWORD, "name": "Dup"},
        headers=admin.headers,
    )
    err(r, 409, "EMAIL_TAKEN")
    r = client.post(
        f"{API}/users",
        json={"email": unique_email(), "password": PASSWORD, "name": "X", "role": "owner"},
        headers=admin.headers,
    )
    assert [f["field"] for f in err(r, 422, "VALIDATION_ERROR")["details"]["fields"]] == ["role"]
    assert count(db, table(User)) == 2
    err(
        client.post(f"{API}/users", json={"email": unique_email(), "password": PASSWORD, "name": "X"}),
        401,
        "UNAUTHORIZED",
    )


def test_create_user_honours_idempotency_key(client: TestClient, db: Engine) -> None:
    admin = register(client)
    body = {"email": unique_email("idem"), "password": PASSWORD, "name": "Idem"}
    headers = {**admin.headers, "Idempotency-Key": "user-1"}
    first = ok(client.post(f"{API}/users", json=body, headers=headers), 201)
    r = client.post(f"{API}/users", json=body, headers=headers)
    assert ok(r, 201) == first
    assert r.headers["Idempotent-Replayed"] == "true"
    assert count(db, table(User)) == 2
    # Same key, another password: a different request, refused.
    r = client.post(f"{API}/users", json={**body, "password": "other-password-1"}, headers=headers)
    err(r, 422, "IDEMPOTENCY_KEY_REUSED")


def test_idempotency_record_does_not_allow_offline_password_guessing(client: TestClient, db: Engine) -> None:
    """The stored request hash must not let whoever reads the database test password guesses at SHA-256 speed.

    Everything else in the fingerprinted body (email, name, role, path) is readable from the users table.
    """
    admin = register(client)
    body = {"email": unique_email("idem"), "password": PASSWORD, "name": "Idem", "role": "member"}
    ok(client.post(f"{API}/users", json=body, headers={**admin.headers, "Idempotency-Key": "u-2"}), 201)
    t = table(IdempotencyRecord)
    stored = row(db, t, t.c.key == "u-2").request_hash
    public = {k: v for k, v in body.items() if k != "password"}
    guess = fingerprint(f"{API}/users", public | {"password_sha": fingerprint("p", PASSWORD)})
    assert stored != guess


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api-keys", {"name": "nope"}),
        ("GET", "/api-keys", None),
        ("PATCH", "/organization", {"legal_name": "Hijacked"}),
        ("GET", "/audit-logs", None),
        ("POST", "/users", {"email": "x@example.com", "password": PASSWORD, "name": "X"}),
        ("GET", "/users", None),
    ],
)
def test_member_is_forbidden_on_admin_routes(
    client: TestClient, db: Engine, method: str, path: str, body: dict[str, Any] | None
) -> None:
    admin = register(client, org="Admin Org")
    member = _create_member(client, admin)
    token = login(client, member["email"])["access_token"]
    r = client.request(method, f"{API}{path}", json=body, headers=bearer(token))
    err(r, 403, "ADMIN_REQUIRED")
    assert count(db, table(User)) == 2
    # Nothing of the refused change happened.
    org = ok(client.get(f"{API}/organization", headers=admin.headers))
    assert org["legal_name"] == "Admin Org"


def test_member_reads_the_organization(client: TestClient) -> None:
    admin = register(client, org="Shared Org")
    member = _create_member(client, admin)
    token = login(client, member["email"])["access_token"]
    org = ok(client.get(f"{API}/organization", headers=bearer(token)))
    assert org["id"] == admin.organization_id
    assert org["name"] == "Shared Org"


def test_a_demoted_role_takes_effect_without_a_new_token(client: TestClient, db: Engine) -> None:
    """Roles are read from the database on every request, not trusted from the token."""
    admin = register(client)
    second_admin = _create_member(client, admin, role="admin")
    token = login(client, second_admin["email"])["access_token"]
    ok(client.get(f"{API}/api-keys", headers=bearer(token)))
    users = table(User)
    with db.begin() as conn:
        conn.execute(users.update().where(users.c.id == uuid.UUID(second_admin["id"])).values(role="member"))
    err(client.get(f"{API}/api-keys", headers=bearer(token)), 403, "ADMIN_REQUIRED")
    with db.begin() as conn:
        conn.execute(users.update().where(users.c.id == uuid.UUID(second_admin["id"])).values(is_active=False))
    err(client.get(f"{API}/auth/me", headers=bearer(token)), 401, "INVALID_TOKEN")
