from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from invoiceflow.auth.models import AuthSession, User
from tests.auth.helpers import API, audits, bearer, count, err, events, fresh_window, login, ok, row, table
from tests.conftest import unique_email
from tests.factories import PASSWORD, register

TEST_SECRET = "test-secret-key-" + "x" * 32
MAX_FAILURES = 5  # settings.login_max_failures
LOCKOUT_SECONDS = 900  # settings.login_lockout_seconds


def _attempt(client: TestClient, email: str, password: str) -> Any:
    return client.post(f"{API}/auth/login", json={"email": email, "password": password})


def test_login_returns_the_token_pair(client: TestClient, db: Engine) -> None:
    acct = register(client)
    tokens = login(client, f"  {acct.email.upper()} ")  # emails are matched case-insensitively, trimmed
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["refresh_token"].startswith("ifr_")
    assert tokens["access_token"] != acct.access_token

    claims = jwt.decode(tokens["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == acct.user_id
    assert claims["org"] == acct.organization_id
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900

    me = ok(client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"])))
    assert me["user"]["id"] == acct.user_id
    users = table(User)
    assert row(db, users, users.c.id == uuid.UUID(acct.user_id)).last_login_at is not None
    # A second login is a second session, next to the one opened at registration.
    assert count(db, table(AuthSession), table(AuthSession).c.user_id == uuid.UUID(acct.user_id)) == 2
    (event,) = events(db, acct.organization_id, "UserLoggedIn")
    assert event.payload["user_id"] == acct.user_id
    assert len(audits(db, acct.organization_id, "user.login")) == 1


def test_wrong_password_and_unknown_email_answer_the_same_401(client: TestClient, db: Engine) -> None:
    acct = register(client)
    wrong = err(_attempt(client, acct.email, "not-the-password"), 401, "INVALID_CREDENTIALS")
    unknown = err(_attempt(client, unique_email("ghost"), PASSWORD), 401, "INVALID_CREDENTIALS")
    assert wrong["message"] == unknown["message"] == "Invalid email or password"
    assert wrong["details"] == unknown["details"] == {}
    assert events(db, acct.organization_id, "UserLoggedIn") == []


def test_login_validation_names_the_field(client: TestClient) -> None:
    r = client.post(f"{API}/auth/login", json={"email": "a@example.com"})
    error = err(r, 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["password"]


def test_login_is_throttled_after_max_failures_even_with_the_right_password(client: TestClient) -> None:
    acct = register(client)
    fresh_window(LOCKOUT_SECONDS, need_seconds=10)
    for _ in range(MAX_FAILURES):
        err(_attempt(client, acct.email, "wrong-password"), 401, "INVALID_CREDENTIALS")
    r = _attempt(client, acct.email, PASSWORD)
    error = err(r, 429, "LOGIN_THROTTLED")
    retry_after = int(r.headers["Retry-After"])
    assert 0 < retry_after <= LOCKOUT_SECONDS
    assert error["details"] == {"retry_after": retry_after}
    # Still locked (a throttled attempt is not let through by being correct).
    err(_attempt(client, acct.email.upper(), PASSWORD), 429, "LOGIN_THROTTLED")

    # The lock is per account: another user behind the same address still logs in.
    other = register(client)
    login(client, other.email)


def test_a_successful_login_clears_the_failure_count(client: TestClient) -> None:
    acct = register(client)
    fresh_window(LOCKOUT_SECONDS, need_seconds=10)
    for _ in range(MAX_FAILURES - 1):
        err(_attempt(client, acct.email, "wrong-password"), 401, "INVALID_CREDENTIALS")
    login(client, acct.email)
    for _ in range(MAX_FAILURES - 1):
        err(_attempt(client, acct.email, "wrong-password"), 401, "INVALID_CREDENTIALS")
    login(client, acct.email)


# --- /auth/me and the ways a token is refused ---------------------------------------------------------------


def test_me_with_an_access_token(client: TestClient) -> None:
    acct = register(client, org="Me Corp", name="Mia")
    me = ok(client.get(f"{API}/auth/me", headers=acct.headers))
    assert me["auth"] == "token"
    assert me["role"] == "admin"
    assert me["api_key_id"] is None
    assert me["user"]["email"] == acct.email
    assert me["user"]["name"] == "Mia"
    assert me["organization"] == {"id": acct.organization_id, "name": "Me Corp"}


def test_me_with_an_api_key(client: TestClient) -> None:
    acct = register(client, org="Key Corp")
    created = ok(client.post(f"{API}/api-keys", json={"name": "robot"}, headers=acct.headers), 201)
    me = ok(client.get(f"{API}/auth/me", headers={"X-API-Key": created["key"]}))
    assert me["auth"] == "api_key"
    assert me["api_key_id"] == created["id"]
    assert me["user"] is None
    assert me["role"] == "member"  # keys never carry admin rights
    assert me["organization"] == {"id": acct.organization_id, "name": "Key Corp"}


def test_me_without_credentials_is_401(client: TestClient) -> None:
    r = client.get(f"{API}/auth/me")
    err(r, 401, "UNAUTHORIZED")
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_me_with_a_garbage_token_is_401(client: TestClient) -> None:
    register(client)
    err(client.get(f"{API}/auth/me", headers=bearer("not.a.jwt")), 401, "INVALID_TOKEN")
    err(client.get(f"{API}/auth/me", headers={"Authorization": "Basic dXNlcjpwdw=="}), 401, "UNAUTHORIZED")
    err(client.get(f"{API}/auth/me", headers={"X-API-Key": "ifk_nope"}), 401, "INVALID_API_KEY")


def _craft(acct_token: str, *, exp_offset: int, secret: str = TEST_SECRET, **extra: object) -> str:
    """A token with the real claims of `acct_token`, re-signed with another expiry."""
    claims = jwt.decode(acct_token, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 3600, exp=now + exp_offset, **extra)
    return jwt.encode(claims, secret, algorithm="HS256")


def test_me_with_an_expired_token_is_401(client: TestClient) -> None:
    acct = register(client)
    # Control: the same claims with a future expiry are accepted, so only the expiry is at fault below.
    ok(client.get(f"{API}/auth/me", headers=bearer(_craft(acct.access_token, exp_offset=600))))
    error = err(
        client.get(f"{API}/auth/me", headers=bearer(_craft(acct.access_token, exp_offset=-60))), 401, "INVALID_TOKEN"
    )
    assert "expired" in error["message"]


def test_tokens_signed_with_another_key_or_of_another_type_are_401(client: TestClient) -> None:
    acct = register(client)
    forged = _craft(acct.access_token, exp_offset=600, secret="another-secret-" + "y" * 32)
    err(client.get(f"{API}/auth/me", headers=bearer(forged)), 401, "INVALID_TOKEN")
    not_access = _craft(acct.access_token, exp_offset=600, typ="refresh")
    err(client.get(f"{API}/auth/me", headers=bearer(not_access)), 401, "INVALID_TOKEN")
    unknown_session = _craft(acct.access_token, exp_offset=600, sid=str(uuid.uuid4()))
    err(client.get(f"{API}/auth/me", headers=bearer(unknown_session)), 401, "INVALID_TOKEN")
    # The refresh token is not an access token.
    err(client.get(f"{API}/auth/me", headers=bearer(acct.refresh_token)), 401, "INVALID_TOKEN")
