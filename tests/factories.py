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
            {"description": "Consulting", "quantity": "3", "unit_code": "HUR", "unit_price": "125.00", "vat_rate": "21"},
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
