"""Refresh-token rotation, reuse detection and logout."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from invoiceflow.auth.models import AuthSession, RefreshToken
from invoiceflow.auth.security import sha256_hex
from invoiceflow.core.db import utcnow
from tests.auth.helpers import API, audits, bearer, err, events, login, ok, row, table
from tests.factories import register


def _refresh(client: TestClient, token: str) -> Any:
    return client.post(f"{API}/auth/refresh", json={"refresh_token": token})


def _me(client: TestClient, token: str) -> Any:
    return client.get(f"{API}/auth/me", headers=bearer(token))


def _sid(access_token: str) -> uuid.UUID:
    return uuid.UUID(jwt.decode(access_token, options={"verify_signature": False})["sid"])


def test_refresh_rotates_the_pair(client: TestClient, db: Engine) -> None:
    acct = register(client)
    pair = ok(_refresh(client, acct.refresh_token))
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert pair["token_type"] == "bearer"
    assert pair["refresh_token"] != acct.refresh_token
    assert _sid(pair["access_token"]) == _sid(acct.access_token)  # same session, new tokens
    ok(_me(client, pair["access_token"]))

    t = table(RefreshToken)
    assert row(db, t, t.c.token_hash == sha256_hex(acct.refresh_token)).used_at is not None
    assert row(db, t, t.c.token_hash == sha256_hex(pair["refresh_token"])).used_at is None

    # The rotated token rotates again.
    again = ok(_refresh(client, pair["refresh_token"]))
    ok(_me(client, again["access_token"]))


def test_reusing_a_spent_refresh_token_revokes_the_whole_session(client: TestClient, db: Engine) -> None:
    acct = register(client)
    other = login(client, acct.email)  # a second session of the same user, untouched by the reuse
    rotated = ok(_refresh(client, acct.refresh_token))

    error = err(_refresh(client, acct.refresh_token), 401, "REFRESH_TOKEN_REUSED")
    assert "revoked" in error["message"]

    sessions = table(AuthSession)
    assert row(db, sessions, sessions.c.id == _sid(acct.access_token)).revoked_at is not None
    # Everything issued in that session is dead: old and rotated access tokens, rotated refresh token.
    err(_me(client, rotated["access_token"]), 401, "INVALID_TOKEN")
    err(_me(client, acct.access_token), 401, "INVALID_TOKEN")
    err(_refresh(client, rotated["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")
    # The other session was not involved.
    assert row(db, sessions, sessions.c.id == _sid(other["access_token"])).revoked_at is None
    ok(_me(client, other["access_token"]))
    ok(_refresh(client, other["refresh_token"]))


def test_unknown_expired_and_malformed_refresh_tokens_are_refused(client: TestClient, db: Engine) -> None:
    acct = register(client)
    err(_refresh(client, "ifr_does-not-exist"), 401, "INVALID_REFRESH_TOKEN")
    error = err(client.post(f"{API}/auth/refresh", json={}), 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["refresh_token"]

    t = table(RefreshToken)
    with db.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.token_hash == sha256_hex(acct.refresh_token))
            .values(expires_at=utcnow().replace(year=2000))
        )
    err(_refresh(client, acct.refresh_token), 401, "INVALID_REFRESH_TOKEN")


def test_logout_ends_that_session_only(client: TestClient, db: Engine) -> None:
    acct = register(client)
    second = login(client, acct.email)

    r = client.post(f"{API}/auth/logout", json={"refresh_token": acct.refresh_token}, headers=acct.headers)
    assert ok(r) == {"logged_out": True}

    err(_me(client, acct.access_token), 401, "INVALID_TOKEN")
    err(_refresh(client, acct.refresh_token), 401, "INVALID_REFRESH_TOKEN")
    # The other login of the same user keeps working.
    ok(_me(client, second["access_token"]))
    ok(_refresh(client, second["refresh_token"]))

    (event,) = events(db, acct.organization_id, "UserLoggedOut")
    assert event.payload == {"user_id": acct.user_id}
    assert len(audits(db, acct.organization_id, "user.logout")) == 1


def test_logout_with_the_bearer_only_ends_the_current_session(client: TestClient) -> None:
    acct = register(client)
    second = login(client, acct.email)
    ok(client.post(f"{API}/auth/logout", headers=bearer(second["access_token"])))
    err(_me(client, second["access_token"]), 401, "INVALID_TOKEN")
    err(_refresh(client, second["refresh_token"]), 401, "INVALID_REFRESH_TOKEN")
    ok(_me(client, acct.access_token))
    # Logging out again with the dead token is refused, not a second event.
    err(client.post(f"{API}/auth/logout", headers=bearer(second["access_token"])), 401, "INVALID_TOKEN")


def test_logout_cannot_end_another_users_session(client: TestClient) -> None:
    alice = register(client)
    mallory = register(client)
    r = client.post(f"{API}/auth/logout", json={"refresh_token": alice.refresh_token}, headers=mallory.headers)
    assert ok(r) == {"logged_out": True}
    ok(_me(client, alice.access_token))
    ok(_refresh(client, alice.refresh_token))
    # A foreign refresh token in the body does not stop the caller's own logout.
    err(_me(client, mallory.access_token), 401, "INVALID_TOKEN")
    err(_refresh(client, mallory.refresh_token), 401, "INVALID_REFRESH_TOKEN")


def test_logout_without_credentials_is_401(client: TestClient) -> None:
    err(client.post(f"{API}/auth/logout"), 401, "UNAUTHORIZED")
