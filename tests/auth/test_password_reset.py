"""Forgotten password: request (always 202), the .eml in the outbox, confirm (single use, expiry)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from invoiceflow.auth.models import PasswordResetToken
from invoiceflow.auth.security import sha256_hex
from invoiceflow.core.db import utcnow
from tests.auth.helpers import (
    API,
    audits,
    bearer,
    count,
    err,
    events,
    login,
    mail_text,
    ok,
    read_mails,
    table,
    wait_for_mails,
)
from tests.conftest import unique_email
from tests.factories import PASSWORD, Account, register

NEW_PASSWORD = "a-brand-new-passphrase"
TOKEN_RE = re.compile(r"Reset token: (ifp_[A-Za-z0-9_-]+)")


def _request(client: TestClient, email: str) -> Any:
    return client.post(f"{API}/auth/password-reset", json={"email": email})


def _confirm(client: TestClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return client.post(f"{API}/auth/password-reset/confirm", json={"token": token, "new_password": password})


def _login_status(client: TestClient, email: str, password: str) -> int:
    r = client.post(f"{API}/auth/login", json={"email": email, "password": password})
    return int(r.status_code)


def _reset_token(client: TestClient, outbox: Path, acct: Account) -> str:
    """Ask for a reset (the account's first) and read the token out of the mail."""
    ok(_request(client, acct.email), 202)
    (mail,) = wait_for_mails(outbox, acct.email)
    match = TOKEN_RE.search(mail_text(mail))
    assert match, mail_text(mail)
    return match.group(1)


def test_reset_request_answers_the_same_for_known_and_unknown_emails(
    client: TestClient, db: Engine, outbox: Path
) -> None:
    acct = register(client)
    ghost = unique_email("ghost")
    unknown = _request(client, ghost)
    known = _request(client, acct.email)
    assert unknown.status_code == known.status_code == 202
    assert ok(unknown, 202) == ok(known, 202) == {"message": "If the account exists, a reset email is on its way."}

    (mail,) = wait_for_mails(outbox, acct.email)
    assert mail["Subject"] == "Reset your invoiceflow password"
    assert "no-reply@invoiceflow.local" in mail["From"]
    text = mail_text(mail)
    match = TOKEN_RE.search(text)
    assert match
    token = match.group(1)
    assert f"reset-password?token={token}" in text
    # The mailed token is the one stored (hashed, never in clear) for this user.
    t = table(PasswordResetToken)
    assert count(db, t) == 1
    assert count(db, t, t.c.token_hash == sha256_hex(token), t.c.user_id == uuid.UUID(acct.user_id)) == 1

    # Nothing went out to the unknown address (its request was handled before the known one).
    time.sleep(0.2)
    assert read_mails(outbox, ghost) == []
    assert len(events(db, acct.organization_id, "PasswordResetRequested")) == 1


def test_confirm_changes_the_password_and_ends_every_session(client: TestClient, db: Engine, outbox: Path) -> None:
    acct = register(client)
    other = login(client, acct.email)
    token = _reset_token(client, outbox, acct)

    assert ok(_confirm(client, token)) == {"password_changed": True}

    assert _login_status(client, acct.email, PASSWORD) == 401
    login(client, acct.email, NEW_PASSWORD)
    # Existing logins were revoked: access and refresh tokens of both earlier sessions.
    for access, refresh in ((acct.access_token, acct.refresh_token), (other["access_token"], other["refresh_token"])):
        err(client.get(f"{API}/auth/me", headers=bearer(access)), 401, "INVALID_TOKEN")
        err(client.post(f"{API}/auth/refresh", json={"refresh_token": refresh}), 401, "INVALID_REFRESH_TOKEN")

    (event,) = events(db, acct.organization_id, "PasswordResetCompleted")
    assert event.payload == {"user_id": acct.user_id}
    assert len(audits(db, acct.organization_id, "user.password_reset")) == 1


def test_a_reset_token_works_once(client: TestClient, outbox: Path) -> None:
    acct = register(client)
    token = _reset_token(client, outbox, acct)
    ok(_confirm(client, token))
    error = err(_confirm(client, token, "yet-another-passphrase"), 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["token"]
    assert _login_status(client, acct.email, "yet-another-passphrase") == 401
    login(client, acct.email, NEW_PASSWORD)


def test_an_expired_reset_token_is_refused(client: TestClient, db: Engine, outbox: Path) -> None:
    acct = register(client)
    token = _reset_token(client, outbox, acct)
    t = table(PasswordResetToken)
    with db.begin() as conn:
        conn.execute(
            update(t).where(t.c.token_hash == sha256_hex(token)).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    error = err(_confirm(client, token), 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["token"]
    # Nothing changed: the old password and the existing session still work.
    login(client, acct.email, PASSWORD)
    ok(client.get(f"{API}/auth/me", headers=acct.headers))


def test_a_completed_reset_spends_the_other_outstanding_tokens(client: TestClient, outbox: Path) -> None:
    acct = register(client)
    first = _reset_token(client, outbox, acct)
    ok(_request(client, acct.email), 202)
    mails = wait_for_mails(outbox, acct.email, n=2)
    tokens = {match.group(1) for mail in mails for match in TOKEN_RE.finditer(mail_text(mail))}
    (second,) = tokens - {first}

    ok(_confirm(client, second))
    # An older reset email (say, sitting in a compromised mailbox) must not reset the password again.
    err(_confirm(client, first, "attacker-chosen-pass"), 422, "VALIDATION_ERROR")
    login(client, acct.email, NEW_PASSWORD)


def test_confirm_validates_its_input(client: TestClient) -> None:
    error = err(_confirm(client, "ifp_whatever", "short"), 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["new_password"]
    error = err(_confirm(client, "ifp_unknown-token"), 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["token"]
