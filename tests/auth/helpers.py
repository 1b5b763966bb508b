"""Shared helpers for the accounts tests: envelope checks, logins, DB rows, the mail outbox.

Responses are typed `Any`: they come from the TestClient (httpx2) or from httpx against real servers.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, func, select

from invoiceflow.core.db import Base
from invoiceflow.core.models import AuditLog, DomainEvent
from tests.factories import PASSWORD, Account

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
API = "/api/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_key(raw: str) -> dict[str, str]:
    return {"X-API-Key": raw}


def ok(r: Any, status: int = 200) -> Any:
    """Assert a success envelope with `status`; return its data."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"success", "data", "timestamp", "correlation_id"}, body
    assert body["success"] is True
    assert TIMESTAMP_RE.match(body["timestamp"]), body["timestamp"]
    assert body["correlation_id"] == r.headers["X-Correlation-ID"]
    return body["data"]


def err(r: Any, status: int, code: str) -> dict[str, Any]:
    """Assert an error envelope with `status` and `code`; return the error object."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"success", "error", "timestamp", "correlation_id"}, body
    assert body["success"] is False
    assert TIMESTAMP_RE.match(body["timestamp"]), body["timestamp"]
    assert body["correlation_id"] == r.headers["X-Correlation-ID"]
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


def error_fields(r: Any) -> set[str]:
    """The field names of a 422 VALIDATION_ERROR."""
    error = err(r, 422, r.json()["error"]["code"])
    return {f["field"] for f in error["details"]["fields"]}


def login(client: Any, email_: str, password: str = PASSWORD) -> dict[str, Any]:
    r = client.post(f"{API}/auth/login", json={"email": email_, "password": password})
    data: dict[str, Any] = ok(r)
    return data


def create_api_key(client: Any, account: Account, **body: Any) -> dict[str, Any]:
    r = client.post(f"{API}/api-keys", json={"name": "ci", **body}, headers=account.headers)
    data: dict[str, Any] = ok(r, 201)
    return data


def table(model: type[Base]) -> Table:
    """The model's Core table, for direct row assertions."""
    t = model.__table__
    assert isinstance(t, Table)
    return t


def count(db: Engine, table: Table, *where: Any) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def row(db: Engine, table: Table, *where: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(select(table).where(*where)).one()


def events(db: Engine, organization_id: str, type_: str) -> list[Any]:
    t = table(DomainEvent)
    with db.connect() as conn:
        stmt = select(t).where(t.c.organization_id == uuid.UUID(organization_id), t.c.type == type_).order_by(t.c.seq)
        return list(conn.execute(stmt))


def audits(db: Engine, organization_id: str, action: str) -> list[Any]:
    t = table(AuditLog)
    with db.connect() as conn:
        stmt = (
            select(t).where(t.c.organization_id == uuid.UUID(organization_id), t.c.action == action).order_by(t.c.seq)
        )
        return list(conn.execute(stmt))


def fresh_window(window_seconds: int, need_seconds: float) -> None:
    """Fixed-window limiters reset on the window boundary: start a burst with `need_seconds` to spare."""
    left = window_seconds - (time.time() % window_seconds)
    if left < need_seconds:
        time.sleep(left + 0.05)


def read_mails(outbox: Path, to: str) -> list[EmailMessage]:
    if not outbox.exists():
        return []
    found = []
    for path in sorted(outbox.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        if msg["To"] == to:
            found.append(msg)
    return found


def wait_for_mails(outbox: Path, to: str, n: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
    """Mail goes out after the commit, in the background: poll the outbox for it."""
    deadline = time.monotonic() + timeout
    while True:
        found = read_mails(outbox, to)
        if len(found) >= n or time.monotonic() > deadline:
            assert len(found) >= n, f"expected {n} mail(s) to {to} in {outbox}, found {len(found)}"
            return found
        time.sleep(0.05)


def mail_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    text: str = part.get_content()
    return text
