"""API tests for /api/v1/clients: 401 without a token, 404 for another organisation, 422 naming the field,
and the happy paths with exact values."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from invoiceflow.clients.models import Client
from tests.factories import (
    Account,
    assert_error,
    audit_rows,
    client_payload,
    create_client,
    error_fields,
    event_rows,
    register,
)

BASE = "/api/v1/clients"


def client_row(engine: Engine, client_id: str) -> Client:
    with Session(engine) as session:
        row = session.scalars(select(Client).where(Client.id == uuid.UUID(client_id))).one()
        session.expunge(row)
        return row


def list_all(client: TestClient, account: Account, **params: Any) -> list[dict[str, Any]]:
    r = client.get(BASE, params={"limit": 200, **params}, headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]["items"]  # type: ignore[no-any-return]


# --- create ---------------------------------------------------------------------------------------


def test_create_client_returns_exact_values_and_records_event_and_audit(client: TestClient, db: Engine) -> None:
    acct = register(client)
    body = client_payload(
        name="  Müller & Söhne GmbH  ",
        email="Billing@Mueller.Example",
        phone="+49 89 123456",
        shipping_address={"line1": "Lager 3", "city": "Augsburg", "country": "de"},
        company_id="HRB 12345",
        electronic_address_scheme="9930",
        electronic_address="DE123456789",
        notes="Pays on time",
    )
    r = client.post(BASE, json=body, headers=acct.headers)
    assert r.status_code == 201, r.text
    envelope = r.json()
    assert envelope["success"] is True
    assert envelope["correlation_id"] == r.headers["x-correlation-id"]
    data = envelope["data"]
    uuid.UUID(data["id"])
    assert data == {
        "id": data["id"],
        "name": "Müller & Söhne GmbH",
        "email": "billing@mueller.example",
        "phone": "+49 89 123456",
        "address": {"line1": "Hauptstraße 12", "postal_code": "80331", "city": "München", "country": "DE"},
        "shipping_address": {"line1": "Lager 3", "city": "Augsburg", "country": "DE"},
        "country": "DE",
        "vat_id": "DE123456789",
        "company_id": "HRB 12345",
        "electronic_address_scheme": "9930",
        "electronic_address": "DE123456789",
        "currency": "EUR",
        "language": "de",
        "notes": "Pays on time",
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
    }
    assert data["created_at"].endswith("Z")

    row = client_row(db, data["id"])
    assert str(row.organization_id) == acct.organization_id
    assert row.deleted_at is None

    (event,) = event_rows(db, type="ClientCreated")
    assert event.resource_type == "client"
    assert event.resource_id == data["id"]
    assert str(event.organization_id) == acct.organization_id
    assert event.payload == {"client_id": data["id"], "name": "Müller & Söhne GmbH", "email": "billing@mueller.example"}

    (audit,) = audit_rows(db, action="client.create")
    assert audit.resource_type == "client"
    assert audit.resource_id == data["id"]
    assert str(audit.actor_user_id) == acct.user_id
    assert str(audit.organization_id) == acct.organization_id


def test_create_client_minimal_body_uses_defaults(client: TestClient) -> None:
    acct = register(client)
    r = client.post(
        BASE, json={"name": "Bob", "email": "bob@example.com", "address": {"country": "be"}}, headers=acct.headers
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["address"] == {"country": "BE"}
    assert data["country"] == "BE"
    assert data["language"] == "en"
    assert data["currency"] is None
    assert data["shipping_address"] is None
    assert data["vat_id"] is None


def test_create_client_requires_authentication(client: TestClient, db: Engine) -> None:
    r = client.post(BASE, json=client_payload())
    assert_error(r, 401, "UNAUTHORIZED")
    r = client.post(BASE, json=client_payload(), headers={"Authorization": "Bearer not-a-token"})
    assert_error(r, 401, "INVALID_TOKEN")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"email": "not-an-email"}, "email"),
        ({"address": {"line1": "Somewhere"}}, "address.country"),
        ({"address": {"country": "XX"}}, "address.country"),
        ({"vat_id": "123"}, "vat_id"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "ABC"}, "currency"),
        ({"language": "klingon-xx"}, "language"),
        ({"phone": "call me maybe"}, "phone"),
        ({"electronic_address_scheme": "12"}, "electronic_address_scheme"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_create_client_rejects_invalid_fields(
    client: TestClient, db: Engine, overrides: dict[str, Any], field: str
) -> None:
    acct = register(client)
    r = client.post(BASE, json=client_payload(**overrides), headers=acct.headers)
    assert field in error_fields(r)
    assert list_all(client, acct) == []


@pytest.mark.parametrize("missing", ["name", "email", "address"])
def test_create_client_rejects_missing_required_fields(client: TestClient, missing: str) -> None:
    acct = register(client)
    body = client_payload()
    del body[missing]
    r = client.post(BASE, json=body, headers=acct.headers)
    assert error_fields(r) == [missing]


# --- email uniqueness -----------------------------------------------------------------------------


def test_email_is_unique_among_live_clients_case_insensitively(client: TestClient, db: Engine) -> None:
    acct = register(client)
    first = create_client(client, acct, email="ap@globex.example")
    r = client.post(BASE, json=client_payload(email="AP@Globex.Example"), headers=acct.headers)
    error = assert_error(r, 409, "DUPLICATE_CLIENT_EMAIL")
    assert error["details"]["field"] == "email"
    assert [c["id"] for c in list_all(client, acct)] == [first["id"]]
    assert len(event_rows(db, type="ClientCreated")) == 1


def test_email_is_reusable_after_soft_delete(client: TestClient, db: Engine) -> None:
    acct = register(client)
    first = create_client(client, acct, email="ap@globex.example")
    assert client.delete(f"{BASE}/{first['id']}", headers=acct.headers).status_code == 200
    second = create_client(client, acct, email="ap@globex.example")
    assert second["id"] != first["id"]
    assert client_row(db, first["id"]).deleted_at is not None
    assert client_row(db, second["id"]).deleted_at is None


def test_same_email_is_allowed_in_another_organisation(client: TestClient) -> None:
    a, b = register(client, org="A"), register(client, org="B")
    create_client(client, a, email="shared@example.com")
    create_client(client, b, email="shared@example.com")


# --- read -----------------------------------------------------------------------------------------


def test_get_client(client: TestClient) -> None:
    acct = register(client)
    created = create_client(client, acct)
    r = client.get(f"{BASE}/{created['id']}", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == created


def test_get_client_requires_authentication(client: TestClient) -> None:
    acct = register(client)
    created = create_client(client, acct)
    assert_error(client.get(f"{BASE}/{created['id']}"), 401, "UNAUTHORIZED")


def test_get_client_of_another_organisation_is_404(client: TestClient) -> None:
    a, b = register(client, org="A"), register(client, org="B")
    created = create_client(client, a)
    assert_error(client.get(f"{BASE}/{created['id']}", headers=b.headers), 404, "CLIENT_NOT_FOUND")
    assert_error(client.get(f"{BASE}/{uuid.uuid4()}", headers=a.headers), 404, "CLIENT_NOT_FOUND")


def test_get_client_with_malformed_id_is_422(client: TestClient) -> None:
    acct = register(client)
    assert error_fields(client.get(f"{BASE}/not-a-uuid", headers=acct.headers)) == ["client_id"]


# --- update ---------------------------------------------------------------------------------------


def test_update_client_changes_only_the_given_fields(client: TestClient, db: Engine) -> None:
    acct = register(client)
    created = create_client(client, acct, phone="+32 2 123 45 67")
    r = client.patch(
        f"{BASE}/{created['id']}",
        json={"name": "Globex NV", "email": "NEW@globex.example", "address": {"city": "Gent", "country": "BE"}},
        headers=acct.headers,
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["name"] == "Globex NV"
    assert data["email"] == "new@globex.example"
    assert data["address"] == {"city": "Gent", "country": "BE"}
    assert data["country"] == "BE"
    assert data["phone"] == "+32 2 123 45 67"
    assert data["vat_id"] == created["vat_id"]
    assert data["created_at"] == created["created_at"]
    assert data["updated_at"] > created["updated_at"]
    assert client.get(f"{BASE}/{created['id']}", headers=acct.headers).json()["data"] == data

    (event,) = event_rows(db, type="ClientUpdated")
    assert event.payload == {"client_id": created["id"], "changed": ["address", "email", "name"]}
    (audit,) = audit_rows(db, action="client.update")
    assert audit.details == {"changed": ["address", "email", "name"]}


def test_update_client_can_clear_optional_fields(client: TestClient) -> None:
    acct = register(client)
    created = create_client(client, acct, notes="old")
    r = client.patch(f"{BASE}/{created['id']}", json={"notes": None, "vat_id": None}, headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["notes"] is None
    assert r.json()["data"]["vat_id"] is None


def test_update_client_requires_authentication(client: TestClient) -> None:
    acct = register(client)
    created = create_client(client, acct)
    assert_error(client.patch(f"{BASE}/{created['id']}", json={"name": "X"}), 401, "UNAUTHORIZED")


def test_update_client_of_another_organisation_is_404_and_changes_nothing(client: TestClient) -> None:
    a, b = register(client, org="A"), register(client, org="B")
    created = create_client(client, a)
    r = client.patch(f"{BASE}/{created['id']}", json={"name": "Hijacked"}, headers=b.headers)
    assert_error(r, 404, "CLIENT_NOT_FOUND")
    assert client.get(f"{BASE}/{created['id']}", headers=a.headers).json()["data"] == created


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"email": None}, "email"),
        ({"email": "nope"}, "email"),
        ({"address": None}, "address"),
        ({"address": {"country": "ZZ"}}, "address.country"),
        ({"language": None}, "language"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
def test_update_client_rejects_invalid_fields(client: TestClient, body: dict[str, Any], field: str) -> None:
    acct = register(client)
    created = create_client(client, acct)
    r = client.patch(f"{BASE}/{created['id']}", json=body, headers=acct.headers)
    assert field in error_fields(r)
    assert client.get(f"{BASE}/{created['id']}", headers=acct.headers).json()["data"] == created


def test_update_client_email_to_one_in_use_is_409(client: TestClient) -> None:
    acct = register(client)
    create_client(client, acct, email="taken@example.com")
    other = create_client(client, acct, email="free@example.com")
    r = client.patch(f"{BASE}/{other['id']}", json={"email": "Taken@Example.com"}, headers=acct.headers)
    assert_error(r, 409, "DUPLICATE_CLIENT_EMAIL")
    # Re-saving a client's own email is not a conflict.
    r = client.patch(f"{BASE}/{other['id']}", json={"email": "free@example.com"}, headers=acct.headers)
    assert r.status_code == 200, r.text


# --- delete ---------------------------------------------------------------------------------------


def test_delete_client_is_a_soft_delete(client: TestClient, db: Engine) -> None:
    acct = register(client)
    keep = create_client(client, acct)
    gone = create_client(client, acct)
    r = client.delete(f"{BASE}/{gone['id']}", headers=acct.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == gone["id"]

    assert_error(client.get(f"{BASE}/{gone['id']}", headers=acct.headers), 404, "CLIENT_NOT_FOUND")
    assert [c["id"] for c in list_all(client, acct)] == [keep["id"]]
    row = client_row(db, gone["id"])
    assert row.deleted_at is not None
    assert row.name == gone["name"]
    (event,) = event_rows(db, type="ClientDeleted")
    assert event.payload == {"client_id": gone["id"]}
    assert len(audit_rows(db, action="client.delete", resource_id=gone["id"])) == 1

    # Deleted is gone: a second delete or an update answers 404.
    assert_error(client.delete(f"{BASE}/{gone['id']}", headers=acct.headers), 404, "CLIENT_NOT_FOUND")
    assert_error(client.patch(f"{BASE}/{gone['id']}", json={"name": "X"}, headers=acct.headers), 404)


def test_delete_client_requires_authentication(client: TestClient, db: Engine) -> None:
    acct = register(client)
    created = create_client(client, acct)
    assert_error(client.delete(f"{BASE}/{created['id']}"), 401, "UNAUTHORIZED")
    assert client_row(db, created["id"]).deleted_at is None


def test_delete_client_of_another_organisation_is_404(client: TestClient, db: Engine) -> None:
    a, b = register(client, org="A"), register(client, org="B")
    created = create_client(client, a)
    assert_error(client.delete(f"{BASE}/{created['id']}", headers=b.headers), 404, "CLIENT_NOT_FOUND")
    assert client_row(db, created["id"]).deleted_at is None


# --- list -----------------------------------------------------------------------------------------


def test_list_clients_filters_by_q_case_insensitively_on_name_and_email(client: TestClient) -> None:
    acct = register(client)
    globex = create_client(client, acct, name="Globex Corporation", email="ap@globex.example")
    initech = create_client(client, acct, name="Initech", email="billing@initech.example")
    umbrella = create_client(client, acct, name="Umbrella 100% Ltd", email="finance@umbrella.example")

    def q(needle: str) -> set[str]:
        return {c["id"] for c in list_all(client, acct, q=needle)}

    assert q("GLOBEX") == {globex["id"]}
    assert q("corp") == {globex["id"]}
    assert q("BILLING@") == {initech["id"]}
    assert q(".example") == {globex["id"], initech["id"], umbrella["id"]}
    # LIKE wildcards are matched literally.
    assert q("100%") == {umbrella["id"]}
    assert q("%") == {umbrella["id"]}
    assert q("_") == set()
    assert q("nobody") == set()


def test_list_clients_filters_by_country(client: TestClient) -> None:
    acct = register(client)
    de = create_client(client, acct)
    be = create_client(client, acct, address={"city": "Brussel", "country": "BE"})
    assert [c["id"] for c in list_all(client, acct, country="BE")] == [be["id"]]
    assert [c["id"] for c in list_all(client, acct, country="de")] == [de["id"]]
    assert list_all(client, acct, country="FR") == []
    assert error_fields(client.get(BASE, params={"country": "XX"}, headers=acct.headers)) == ["country"]


def test_list_clients_shows_only_own_organisation(client: TestClient) -> None:
    a, b = register(client, org="A"), register(client, org="B")
    mine = create_client(client, a)
    create_client(client, b)
    assert [c["id"] for c in list_all(client, a)] == [mine["id"]]


def test_list_clients_requires_authentication(client: TestClient) -> None:
    assert_error(client.get(BASE), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": "bm90LWpzb24"}, "cursor"),
        ({"cursor": "WyJ4IiwieSJd"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_list_clients_rejects_invalid_parameters(client: TestClient, params: dict[str, Any], field: str) -> None:
    acct = register(client)
    create_client(client, acct)
    assert field in error_fields(client.get(BASE, params=params, headers=acct.headers))


def test_list_clients_cursor_pagination_walks_every_client_once(client: TestClient) -> None:
    acct = register(client)
    created = [create_client(client, acct, name=f"Client {i}")["id"] for i in range(7)]
    seen: list[str] = []
    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = client.get(BASE, params=params, headers=acct.headers)
        assert r.status_code == 200, r.text
        page = r.json()["data"]
        assert page["limit"] == 3
        pages.append(len(page["items"]))
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [3, 3, 1]
    assert len(seen) == len(set(seen)) == 7
    # Newest first.
    assert seen == list(reversed(created))


def test_list_clients_pagination_with_filter(client: TestClient) -> None:
    acct = register(client)
    be = [create_client(client, acct, address={"country": "BE"})["id"] for _ in range(5)]
    for _ in range(3):
        create_client(client, acct)
    first = client.get(BASE, params={"limit": 2, "country": "BE"}, headers=acct.headers).json()["data"]
    second = client.get(
        BASE, params={"limit": 2, "country": "BE", "cursor": first["next_cursor"]}, headers=acct.headers
    ).json()["data"]
    third = client.get(
        BASE, params={"limit": 2, "country": "BE", "cursor": second["next_cursor"]}, headers=acct.headers
    ).json()["data"]
    ids = [c["id"] for page in (first, second, third) for c in page["items"]]
    assert ids == list(reversed(be))
    assert third["next_cursor"] is None
