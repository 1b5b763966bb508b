"""API keys: the secret shown once, revocation, tenancy, per-key rate limits, idempotent creation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from invoiceflow.auth.models import ApiKey
from invoiceflow.auth.security import sha256_hex
from invoiceflow.core.db import utcnow
from invoiceflow.core.models import IdempotencyRecord
from tests.auth.helpers import API, api_key, audits, count, create_api_key, err, events, fresh_window, ok, row, table
from tests.factories import register

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
READ_FIELDS = {
    "id",
    "name",
    "prefix",
    "rate_limit_per_minute",
    "created_at",
    "last_used_at",
    "revoked_at",
    "expires_at",
}


def test_create_shows_the_secret_once_and_never_again(client: TestClient, db: Engine) -> None:
    acct = register(client)
    created = create_api_key(client, acct, name="ERP sync")
    secret = created["key"]
    assert set(created) == READ_FIELDS | {"key"}
    assert secret.startswith("ifk_")
    assert len(secret) > 40
    assert created["prefix"] == secret[:12]
    assert created["name"] == "ERP sync"
    assert created["rate_limit_per_minute"] == 600  # settings.default_api_key_rate_limit
    assert created["revoked_at"] is None
    assert created["expires_at"] is None

    listed_r = client.get(f"{API}/api-keys", headers=acct.headers)
    (listed,) = ok(listed_r)["items"]
    assert set(listed) == READ_FIELDS
    assert listed["id"] == created["id"]
    assert secret not in listed_r.text
    got_r = client.get(f"{API}/api-keys/{created['id']}", headers=acct.headers)
    got = ok(got_r)
    assert set(got) == READ_FIELDS
    assert got["prefix"] == created["prefix"]
    assert secret not in got_r.text

    # Only a hash is stored.
    keys = table(ApiKey)
    stored = row(db, keys, keys.c.id == uuid.UUID(created["id"]))
    assert stored.key_hash == sha256_hex(secret)
    assert secret not in {str(v) for v in stored}
    (event,) = events(db, acct.organization_id, "ApiKeyCreated")
    assert event.payload == {"api_key_id": created["id"], "name": "ERP sync"}
    assert len(audits(db, acct.organization_id, "api_key.create")) == 1


def test_a_key_authenticates_on_the_api_with_rate_limit_headers(client: TestClient) -> None:
    acct = register(client)
    secret = create_api_key(client, acct, rate_limit_per_minute=50)["key"]
    fresh_window(60, need_seconds=5)
    r = client.get(f"{API}/clients", headers=api_key(secret))
    page = ok(r)
    assert page["items"] == []
    assert r.headers["X-RateLimit-Limit"] == "50"
    assert r.headers["X-RateLimit-Remaining"] == "49"
    assert 0 < int(r.headers["X-RateLimit-Reset"]) <= 60
    assert "Retry-After" not in r.headers
    # Bearer-token requests are not metered per key.
    assert "X-RateLimit-Limit" not in client.get(f"{API}/clients", headers=acct.headers).headers


def test_revoked_key_stops_working(client: TestClient, db: Engine) -> None:
    acct = register(client)
    created = create_api_key(client, acct)
    ok(client.get(f"{API}/clients", headers=api_key(created["key"])))

    revoked = ok(client.delete(f"{API}/api-keys/{created['id']}", headers=acct.headers))
    assert revoked["id"] == created["id"]
    assert revoked["revoked_at"] is not None
    err(client.get(f"{API}/clients", headers=api_key(created["key"])), 401, "INVALID_API_KEY")
    err(client.get(f"{API}/auth/me", headers=api_key(created["key"])), 401, "INVALID_API_KEY")

    # Revoking again is harmless and does not log a second revocation.
    again = ok(client.delete(f"{API}/api-keys/{created['id']}", headers=acct.headers))
    assert again["revoked_at"] == revoked["revoked_at"]
    (event,) = events(db, acct.organization_id, "ApiKeyRevoked")
    assert event.payload == {"api_key_id": created["id"]}
    # The revoked key stays listed, marked.
    (listed,) = ok(client.get(f"{API}/api-keys", headers=acct.headers))["items"]
    assert listed["revoked_at"] == revoked["revoked_at"]


def test_expired_key_stops_working(client: TestClient, db: Engine) -> None:
    acct = register(client)
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = create_api_key(client, acct, expires_at=expires)
    assert datetime.fromisoformat(created["expires_at"]) == datetime.fromisoformat(expires)
    ok(client.get(f"{API}/clients", headers=api_key(created["key"])))
    keys = table(ApiKey)
    with db.begin() as conn:
        conn.execute(
            update(keys).where(keys.c.id == uuid.UUID(created["id"])).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    err(client.get(f"{API}/clients", headers=api_key(created["key"])), 401, "INVALID_API_KEY")


def test_create_validation(client: TestClient, db: Engine) -> None:
    acct = register(client)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "k", "expires_at": past}, "expires_at"),
        ({"name": "k", "expires_at": "2099-01-01T00:00:00"}, "expires_at"),  # no time zone
        ({"name": "k", "rate_limit_per_minute": 0}, "rate_limit_per_minute"),
        ({"name": ""}, "name"),
        ({"name": "k", "scopes": ["all"]}, "scopes"),
    ]
    for body, field in cases:
        r = client.post(f"{API}/api-keys", json=body, headers=acct.headers)
        assert [f["field"] for f in err(r, 422, "VALIDATION_ERROR")["details"]["fields"]] == [field], body
    assert count(db, table(ApiKey)) == 0
    err(client.post(f"{API}/api-keys", json={"name": "k"}), 401, "UNAUTHORIZED")
    err(client.get(f"{API}/api-keys"), 401, "UNAUTHORIZED")


def test_another_organizations_key_is_404(client: TestClient) -> None:
    alice = register(client, org="Alice BV")
    bob = register(client, org="Bob NV")
    bobs = create_api_key(client, bob)

    err(client.get(f"{API}/api-keys/{bobs['id']}", headers=alice.headers), 404, "NOT_FOUND")
    err(client.delete(f"{API}/api-keys/{bobs['id']}", headers=alice.headers), 404, "NOT_FOUND")
    assert ok(client.get(f"{API}/api-keys", headers=alice.headers))["items"] == []
    # Bob's key was not revoked by Alice's attempt.
    ok(client.get(f"{API}/clients", headers=api_key(bobs["key"])))
    assert ok(client.get(f"{API}/api-keys/{bobs['id']}", headers=bob.headers))["revoked_at"] is None

    err(client.get(f"{API}/api-keys/{uuid.uuid4()}", headers=alice.headers), 404, "NOT_FOUND")
    r = client.get(f"{API}/api-keys/not-a-uuid", headers=alice.headers)
    assert [f["field"] for f in err(r, 422, "VALIDATION_ERROR")["details"]["fields"]] == ["key_id"]


def test_a_key_cannot_manage_keys(client: TestClient) -> None:
    """Keys act with the member role: a leaked key cannot mint more keys."""
    acct = register(client)
    secret = create_api_key(client, acct)["key"]
    err(client.post(f"{API}/api-keys", json={"name": "more"}, headers=api_key(secret)), 403, "ADMIN_REQUIRED")
    err(client.get(f"{API}/api-keys", headers=api_key(secret)), 403, "ADMIN_REQUIRED")


def test_rate_limit_per_key(client: TestClient) -> None:
    acct = register(client)
    limited = create_api_key(client, acct, name="tight", rate_limit_per_minute=3)
    other = create_api_key(client, acct, name="other", rate_limit_per_minute=3)
    fresh_window(60, need_seconds=5)

    for remaining in (2, 1, 0):
        r = client.get(f"{API}/clients", headers=api_key(limited["key"]))
        ok(r)
        assert r.headers["X-RateLimit-Limit"] == "3"
        assert r.headers["X-RateLimit-Remaining"] == str(remaining)

    r = client.get(f"{API}/clients", headers=api_key(limited["key"]))
    error = err(r, 429, "RATE_LIMITED")
    for name in RATE_HEADERS:
        assert name in r.headers
    assert r.headers["X-RateLimit-Limit"] == "3"
    assert r.headers["X-RateLimit-Remaining"] == "0"
    retry_after = int(r.headers["Retry-After"])
    assert 0 < retry_after <= 60
    assert r.headers["X-RateLimit-Reset"] == r.headers["Retry-After"]
    assert error["details"] == {"limit": 3, "retry_after": retry_after}

    # The budget is per key: another key of the same organisation, and bearer tokens, are unaffected.
    ok(client.get(f"{API}/clients", headers=api_key(other["key"])))
    ok(client.get(f"{API}/clients", headers=acct.headers))


def test_idempotent_key_creation_replays_without_the_secret(client: TestClient, db: Engine) -> None:
    acct = register(client)
    headers = {**acct.headers, "Idempotency-Key": "create-key-1"}
    body = {"name": "deploy bot", "rate_limit_per_minute": 10}
    first_r = client.post(f"{API}/api-keys", json=body, headers=headers)
    first = ok(first_r, 201)
    assert first["key"].startswith("ifk_")
    assert "Idempotent-Replayed" not in first_r.headers

    replay_r = client.post(f"{API}/api-keys", json=body, headers=headers)
    replay = ok(replay_r, 201)
    assert replay_r.headers["Idempotent-Replayed"] == "true"
    assert replay["key"] is None
    assert first["key"] not in replay_r.text
    assert {k: v for k, v in replay.items() if k != "key"} == {k: v for k, v in first.items() if k != "key"}

    keys = table(ApiKey)
    assert count(db, keys) == 1
    assert len(events(db, acct.organization_id, "ApiKeyCreated")) == 1
    # The stored response never held the secret either.
    (record,) = _idempotency_rows(db)
    assert record.response_body["key"] is None
    assert first["key"] not in str(record.response_body)

    # Same key with another body is a client error, and creates nothing.
    err(client.post(f"{API}/api-keys", json={"name": "other"}, headers=headers), 422, "IDEMPOTENCY_KEY_REUSED")
    # Keys are scoped per organisation: another tenant may use the same Idempotency-Key.
    other = register(client)
    theirs = ok(
        client.post(f"{API}/api-keys", json=body, headers={**other.headers, "Idempotency-Key": "create-key-1"}), 201
    )
    assert theirs["key"].startswith("ifk_")
    assert theirs["id"] != first["id"]
    assert count(db, keys) == 2


def _idempotency_rows(db: Engine) -> list[Any]:
    t = table(IdempotencyRecord)
    with db.connect() as conn:
        return list(conn.execute(t.select()))


def test_the_key_list_is_cursor_paginated_oldest_first(client: TestClient) -> None:
    acct = register(client)
    made = [create_api_key(client, acct, name=f"key {n}")["id"] for n in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = ok(client.get(f"{API}/api-keys", params=params, headers=acct.headers))
        assert page["limit"] == 2
        assert len(page["items"]) <= 2
        seen += [key["id"] for key in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    assert pages == 3
    err(client.get(f"{API}/api-keys", params={"cursor": "not-a-cursor"}, headers=acct.headers), 422, "VALIDATION_ERROR")
    err(client.get(f"{API}/api-keys", params={"limit": 0}, headers=acct.headers), 422, "VALIDATION_ERROR")
    err(client.get(f"{API}/api-keys", params={"limit": 201}, headers=acct.headers), 422, "VALIDATION_ERROR")
