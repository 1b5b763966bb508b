"""Plain keyword-only factories that go through the public API, as a user would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient

PASSWORD = "correct-horse-battery"


@dataclass
class Account:
    email: str
    user_id: str
    organization_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def register(client: TestClient, *, email: str | None = None, org: str = "Acme BV", name: str = "Ada Admin") -> Account:
    email = email or f"admin-{uuid.uuid4().hex[:10]}@example.com"
    r = client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": name, "organization_name": org},
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    return Account(
        email=email,
        user_id=data["user"]["id"],
        organization_id=data["organization"]["id"],
        access_token=data["tokens"]["access_token"],
        refresh_token=data["tokens"]["refresh_token"],
    )


def client_payload(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Müller & Söhne GmbH",
        "email": f"billing-{uuid.uuid4().hex[:8]}@mueller.example",
        "address": {"line1": "Hauptstraße 12", "postal_code": "80331", "city": "München", "country": "DE"},
        "vat_id": "DE123456789",
        "currency": "EUR",
        "language": "de",
    }
    body.update(overrides)
    return body


def create_client(client: TestClient, account: Account, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/v1/clients", json=client_payload(**overrides), headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def invoice_payload(client_id: str, **overrides: Any) -> dict[str, Any]:
    today = date.today()
    body: dict[str, Any] = {
        "client_id": client_id,
        "issue_date": today.isoformat(),
        "due_date": (today + timedelta(days=30)).isoformat(),
        "currency": "EUR",
        "items": [
            {
                "description": "Consulting",
                "quantity": "3",
                "unit_code": "HUR",
                "unit_price": "125.00",
                "vat_rate": "21",
            },
            {"description": "Licence", "quantity": "1", "unit_price": "99.99", "vat_rate": "6"},
        ],
    }
    body.update(overrides)
    return body


def create_invoice(client: TestClient, account: Account, client_id: str, **overrides: Any) -> dict[str, Any]:
    r = client.post("/api/v1/invoices", json=invoice_payload(client_id, **overrides), headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def create_order(client: TestClient, account: Account, client_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": client_id,
        "currency": "EUR",
        "items": [
            {"product_name": "Widget", "quantity": "4", "unit_price": "12.50", "vat_rate": "21"},
            {"product_name": "Gadget", "quantity": "1", "unit_price": "80.00", "vat_rate": "21"},
        ],
    }
    body.update(overrides)
    r = client.post("/api/v1/orders", json=body, headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


# --- Helpers for the clients / orders / invoices API suites, the sweep and the bad-input tests. ---


def utc_today() -> date:
    """The business date the API checks against (the server uses UTC)."""
    from datetime import UTC, datetime

    return datetime.now(UTC).date()


def order_payload(client_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": client_id,
        "currency": "EUR",
        "items": [
            {"product_name": "Widget", "quantity": "4", "unit_price": "12.50", "vat_rate": "21"},
            {"product_name": "Gadget", "quantity": "1", "unit_price": "80.00", "vat_rate": "21"},
        ],
    }
    body.update(overrides)
    return body


def create_api_key(client: TestClient, account: Account, *, name: str = "CI key") -> dict[str, Any]:
    r = client.post("/api/v1/api-keys", json={"name": name}, headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The error envelope with `status` (and `code`); returns its `error` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "error", "timestamp", "correlation_id"}, body
    assert body["success"] is False
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]


def error_fields(response: Any) -> list[str]:
    """The field names of a 422 VALIDATION_ERROR response."""
    error = assert_error(response, 422)
    return [f["field"] for f in error["details"]["fields"]]


def count_rows(engine: Any, table: str) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _log_rows(engine: Any, model: Any, **filters: str | None) -> list[Any]:
    """Rows of the event or audit log, oldest first, filtered on the given columns when not None."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    stmt = select(model).order_by(model.seq)
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(model, column) == value)
    with Session(engine) as session:
        return list(session.scalars(stmt))


def event_rows(engine: Any, *, type: str | None = None, resource_id: str | None = None) -> list[Any]:
    """Rows of the event log (oldest first), optionally of one type and resource."""
    from invoiceflow.core.models import DomainEvent

    return _log_rows(engine, DomainEvent, type=type, resource_id=resource_id)


def audit_rows(engine: Any, *, action: str | None = None, resource_id: str | None = None) -> list[Any]:
    from invoiceflow.core.models import AuditLog

    return _log_rows(engine, AuditLog, action=action, resource_id=resource_id)
