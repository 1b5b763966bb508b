"""/api/v1/webhooks: 401 without a token, 403 for members on changes, 404 for another organisation, 422
naming the field (SSRF refusals included), and the happy paths with exact values."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from invoiceflow.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.auth.helpers import API, bearer, login, ok
from tests.conftest import unique_email
from tests.factories import PASSWORD, Account, assert_error, audit_rows, count_rows, error_fields, register
from tests.webhooks.helpers import BASE, PUBLIC_URL, create_webhook, send_webhook_test, webhook_payload


def endpoint_row(engine: Engine, webhook_id: str) -> WebhookEndpoint:
    with Session(engine) as session:
        row = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id == uuid.UUID(webhook_id))).one()
        session.expunge(row)
        return row


def member_headers(client: TestClient, admin: Account) -> dict[str, str]:
    email = unique_email("member")
    body = {"email": email, "password": PASSWORD, "name": "Max Member"}
    ok(client.post(f"{API}/users", json=body, headers=admin.headers), 201)
    return bearer(login(client, email)["access_token"])


# --- create -----------------------------------------------------------------------------------------


def test_create_returns_the_secret_once_then_masks_it(client: TestClient, db: Engine) -> None:
    acct = register(client)
    body = webhook_payload(event_types=["InvoiceCreated", "InvoicePaid", "InvoiceCreated"], description="ERP")
    data = ok(client.post(BASE, json=body, headers=acct.headers), 201)
    secret = data["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) >= 40
    assert data == {
        "id": data["id"],
        "url": PUBLIC_URL,
        "description": "ERP",
        "event_types": ["InvoiceCreated", "InvoicePaid"],
        "enabled": True,
        "secret": secret,
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
    }
    assert endpoint_row(db, data["id"]).secret == secret

    shown = ok(client.get(f"{BASE}/{data['id']}", headers=acct.headers))
    assert shown["secret"] == f"whsec_…{secret[-4:]}"
    assert {k: v for k, v in shown.items() if k != "secret"} == {k: v for k, v in data.items() if k != "secret"}
    listed = ok(client.get(BASE, headers=acct.headers))
    assert [w["secret"] for w in listed["items"]] == [shown["secret"]]

    (audit,) = audit_rows(db, action="webhook.create", resource_id=data["id"])
    assert audit.details == {"url": PUBLIC_URL, "event_types": ["InvoiceCreated", "InvoicePaid"], "enabled": True}
    assert secret not in str(audit.details)


def test_a_given_secret_is_kept_and_never_shown_again(client: TestClient) -> None:
    acct = register(client)
    data = create_webhook(client, acct, secret="my-own-secret-value-123")
    assert data["secret"] == "my-own-secret-value-123"
    assert ok(client.get(f"{BASE}/{data['id']}", headers=acct.headers))["secret"] == "…-123"


def test_create_is_idempotent_with_a_key(client: TestClient, db: Engine) -> None:
    acct = register(client)
    headers = {**acct.headers, "Idempotency-Key": "hook-1"}
    first = client.post(BASE, json=webhook_payload(), headers=headers)
    again = client.post(BASE, json=webhook_payload(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    assert count_rows(db, "webhook_endpoints") == 1
    other = client.post(BASE, json=webhook_payload(description="other"), headers=headers)
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://127.0.0.1/hooks", "non-public"),
        ("https://10.0.0.7/hooks", "non-public"),
        ("https://169.254.169.254/latest/meta-data/", "non-public"),
        ("https://[::1]:8443/hooks", "non-public"),
        ("https://localhost/hooks", "resolves to a non-public address"),
        ("http://hooks.example.com/x", "https"),
        ("https://admin:pw@hooks.example.com/x", "credentials"),
        ("not a url", "spaces"),
    ],
)
def test_urls_pointing_inside_are_refused(client: TestClient, db: Engine, url: str, message: str) -> None:
    acct = register(client)
    r = client.post(BASE, json=webhook_payload(url=url), headers=acct.headers)
    error = assert_error(r, 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["url"]
    assert message in error["details"]["fields"][0]["message"]
    assert count_rows(db, "webhook_endpoints") == 0


def test_loopback_urls_are_accepted_when_private_networks_are_allowed(private_client: TestClient) -> None:
    acct = register(private_client)
    for url in ("http://127.0.0.1:9/hooks", "http://localhost:9/hooks", "https://10.0.0.7/x"):
        assert create_webhook(private_client, acct, url=url)["url"] == url


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": None}, "url"),
        ({"url": "x" * 2001}, "url"),
        ({"event_types": ["invoice created"]}, "event_types.0"),
        ({"event_types": ["Invoice.Created"]}, "event_types.0"),
        ({"secret": "short"}, "secret"),
        ({"secret": "has spaces in it 12345"}, "secret"),
        ({"description": "x" * 501}, "description"),
        ({"enabled": None}, "enabled"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
def test_invalid_input_is_422_naming_the_field(
    client: TestClient, db: Engine, changes: dict[str, Any], field: str
) -> None:
    acct = register(client)
    assert field in error_fields(client.post(BASE, json=webhook_payload(**changes), headers=acct.headers))
    assert count_rows(db, "webhook_endpoints") == 0


# --- auth and tenancy -------------------------------------------------------------------------------


def test_every_route_needs_authentication(client: TestClient) -> None:
    acct = register(client)
    hook = create_webhook(client, acct)
    delivery = send_webhook_test(client, acct, hook["id"])
    client.headers.clear()
    for method, url in (
        ("POST", BASE),
        ("GET", BASE),
        ("GET", f"{BASE}/{hook['id']}"),
        ("PATCH", f"{BASE}/{hook['id']}"),
        ("DELETE", f"{BASE}/{hook['id']}"),
        ("POST", f"{BASE}/{hook['id']}/rotate-secret"),
        ("POST", f"{BASE}/{hook['id']}/test"),
        ("GET", f"{BASE}/{hook['id']}/deliveries"),
        ("GET", f"{BASE}/{hook['id']}/deliveries/{delivery['id']}"),
        ("POST", f"{BASE}/{hook['id']}/deliveries/{delivery['id']}/redeliver"),
    ):
        assert_error(client.request(method, url, json={}), 401, "UNAUTHORIZED")


def test_members_read_but_only_admins_change(client: TestClient, db: Engine) -> None:
    admin = register(client)
    hook = create_webhook(client, admin)
    delivery = send_webhook_test(client, admin, hook["id"])
    member = member_headers(client, admin)

    assert ok(client.get(f"{BASE}/{hook['id']}", headers=member))["secret"].startswith("whsec_…")
    assert len(ok(client.get(BASE, headers=member))["items"]) == 1
    assert len(ok(client.get(f"{BASE}/{hook['id']}/deliveries", headers=member))["items"]) == 1
    before = endpoint_row(db, hook["id"])
    for method, url, body in (
        ("POST", BASE, webhook_payload()),
        ("PATCH", f"{BASE}/{hook['id']}", {"enabled": False}),
        ("DELETE", f"{BASE}/{hook['id']}", None),
        ("POST", f"{BASE}/{hook['id']}/rotate-secret", None),
        ("POST", f"{BASE}/{hook['id']}/test", None),
        ("POST", f"{BASE}/{hook['id']}/deliveries/{delivery['id']}/redeliver", None),
    ):
        assert_error(client.request(method, url, json=body, headers=member), 403, "ADMIN_REQUIRED")
    after = endpoint_row(db, hook["id"])
    assert (after.secret, after.enabled, after.deleted_at) == (before.secret, before.enabled, before.deleted_at)
    assert count_rows(db, "webhook_endpoints") == 1
    assert count_rows(db, "webhook_deliveries") == 1


def test_another_organisations_webhook_is_404(client: TestClient) -> None:
    owner = register(client, org="Owner BV")
    intruder = register(client, org="Intruder BV")
    hook = create_webhook(client, owner)
    delivery = send_webhook_test(client, owner, hook["id"])
    for method, url in (
        ("GET", f"{BASE}/{hook['id']}"),
        ("PATCH", f"{BASE}/{hook['id']}"),
        ("DELETE", f"{BASE}/{hook['id']}"),
        ("POST", f"{BASE}/{hook['id']}/rotate-secret"),
        ("POST", f"{BASE}/{hook['id']}/test"),
        ("GET", f"{BASE}/{hook['id']}/deliveries"),
        ("GET", f"{BASE}/{hook['id']}/deliveries/{delivery['id']}"),
        ("POST", f"{BASE}/{hook['id']}/deliveries/{delivery['id']}/redeliver"),
    ):
        assert_error(client.request(method, url, json={"description": "x"}, headers=intruder.headers), 404)
    assert ok(client.get(BASE, headers=intruder.headers))["items"] == []
    # A delivery of one endpoint is not found under another endpoint of the same organisation either.
    other = create_webhook(client, owner)
    r = client.get(f"{BASE}/{other['id']}/deliveries/{delivery['id']}", headers=owner.headers)
    assert_error(r, 404, "WEBHOOK_DELIVERY_NOT_FOUND")


# --- update, delete, rotate -------------------------------------------------------------------------


def test_update_changes_only_what_is_sent_and_audits(client: TestClient, db: Engine) -> None:
    acct = register(client)
    hook = create_webhook(client, acct, event_types=["InvoiceCreated"])
    r = client.patch(
        f"{BASE}/{hook['id']}",
        json={"event_types": ["InvoicePaid"], "enabled": False, "description": None},
        headers=acct.headers,
    )
    data = ok(r)
    assert (data["event_types"], data["enabled"], data["description"], data["url"]) == (
        ["InvoicePaid"],
        False,
        None,
        PUBLIC_URL,
    )
    assert data["secret"] == f"whsec_…{hook['secret'][-4:]}"
    assert data["updated_at"] > hook["updated_at"]
    (audit,) = audit_rows(db, action="webhook.update", resource_id=hook["id"])
    assert audit.details == {"changed": ["description", "enabled", "event_types"]}
    refused = client.patch(f"{BASE}/{hook['id']}", json={"url": "https://192.168.0.10/x"}, headers=acct.headers)
    assert error_fields(refused) == ["url"]
    assert endpoint_row(db, hook["id"]).url == PUBLIC_URL


def test_delete_is_soft_and_hides_the_webhook(client: TestClient, db: Engine) -> None:
    acct = register(client)
    hook = create_webhook(client, acct)
    assert ok(client.delete(f"{BASE}/{hook['id']}", headers=acct.headers))["id"] == hook["id"]
    assert_error(client.get(f"{BASE}/{hook['id']}", headers=acct.headers), 404, "WEBHOOK_NOT_FOUND")
    assert_error(client.delete(f"{BASE}/{hook['id']}", headers=acct.headers), 404, "WEBHOOK_NOT_FOUND")
    assert ok(client.get(BASE, headers=acct.headers))["items"] == []
    assert endpoint_row(db, hook["id"]).deleted_at is not None
    assert len(audit_rows(db, action="webhook.delete", resource_id=hook["id"])) == 1


def test_rotate_secret_shows_the_new_secret_once(client: TestClient, db: Engine) -> None:
    acct = register(client)
    hook = create_webhook(client, acct)
    rotated = ok(client.post(f"{BASE}/{hook['id']}/rotate-secret", headers=acct.headers))
    assert rotated["secret"] != hook["secret"]
    assert rotated["secret"].startswith("whsec_")
    assert endpoint_row(db, hook["id"]).secret == rotated["secret"]
    assert ok(client.get(f"{BASE}/{hook['id']}", headers=acct.headers))["secret"] == f"whsec_…{rotated['secret'][-4:]}"
    (audit,) = audit_rows(db, action="webhook.rotate_secret", resource_id=hook["id"])
    assert rotated["secret"] not in str(audit.details)


# --- lists ------------------------------------------------------------------------------------------


def test_lists_are_cursor_paginated_newest_first(client: TestClient) -> None:
    acct = register(client)
    made = [create_webhook(client, acct, description=f"hook {i}")["id"] for i in range(5)]
    create_webhook(client, acct, enabled=False)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "enabled": "true"}
        if cursor:
            params["cursor"] = cursor
        page = ok(client.get(BASE, params=params, headers=acct.headers))
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    for bad in ("junk!", "W10", "x" * 501):
        assert error_fields(client.get(BASE, params={"cursor": bad}, headers=acct.headers)) == ["cursor"]
    assert error_fields(client.get(BASE, params={"limit": 0}, headers=acct.headers)) == ["limit"]


def test_the_delivery_log_lists_newest_first_and_filters_by_status(client: TestClient, db: Engine) -> None:
    acct = register(client)
    hook = create_webhook(client, acct)
    ids = [send_webhook_test(client, acct, hook["id"])["id"] for _ in range(3)]
    page = ok(client.get(f"{BASE}/{hook['id']}/deliveries", params={"limit": 2}, headers=acct.headers))
    assert [d["id"] for d in page["items"]] == ids[::-1][:2]
    rest = ok(
        client.get(f"{BASE}/{hook['id']}/deliveries", params={"cursor": page["next_cursor"]}, headers=acct.headers)
    )
    assert [d["id"] for d in rest["items"]] == ids[:1]
    first = rest["items"][0]
    assert first["status"] == "pending"
    assert first["attempts"] == 0
    assert first["event_type"] == "WebhookTest"
    assert first["endpoint_id"] == hook["id"]
    failed = ok(client.get(f"{BASE}/{hook['id']}/deliveries", params={"status": "failed"}, headers=acct.headers))
    assert failed["items"] == []
    r = client.get(f"{BASE}/{hook['id']}/deliveries", params={"status": "lost"}, headers=acct.headers)
    assert error_fields(r) == ["status"]


# --- test and redeliver -----------------------------------------------------------------------------


def test_test_queues_a_webhook_test_event_for_this_endpoint_only(client: TestClient, db: Engine) -> None:
    acct = register(client)
    hook = create_webhook(client, acct)
    create_webhook(client, acct)  # another endpoint of the organisation, subscribed to everything
    delivery = send_webhook_test(client, acct, hook["id"])
    assert delivery["status"] == "pending"
    assert delivery["next_attempt_at"] is not None
    with Session(db) as session:
        rows = session.scalars(select(WebhookDelivery)).all()
    assert [(str(r.endpoint_id), r.event_type) for r in rows] == [(hook["id"], "WebhookTest")]
    assert len(audit_rows(db, action="webhook.test", resource_id=hook["id"])) == 1


def test_redeliver_makes_a_delivery_due_again_with_a_fresh_schedule(client: TestClient, db: Engine) -> None:
    acct = register(client)
    hook = create_webhook(client, acct)
    delivery = send_webhook_test(client, acct, hook["id"])
    with Session(db) as session:
        row = session.get(WebhookDelivery, uuid.UUID(delivery["id"]))
        assert row is not None
        row.status, row.attempts, row.next_attempt_at, row.last_status_code = "dead", 10, None, 500
        session.commit()
    url = f"{BASE}/{hook['id']}/deliveries/{delivery['id']}/redeliver"
    data = ok(client.post(url, headers=acct.headers), 202)
    assert (data["status"], data["attempts"], data["event_id"]) == ("pending", 0, delivery["event_id"])
    assert data["next_attempt_at"] is not None
    (audit,) = audit_rows(db, action="webhook.redeliver", resource_id=delivery["id"])
    assert audit.details["previous"] == {"status": "dead", "attempts": 10}

    ok(client.patch(f"{BASE}/{hook['id']}", json={"enabled": False}, headers=acct.headers))
    assert_error(client.post(url, headers=acct.headers), 409, "WEBHOOK_DISABLED")
    assert_error(client.post(f"{BASE}/{hook['id']}/test", headers=acct.headers), 409, "WEBHOOK_DISABLED")
