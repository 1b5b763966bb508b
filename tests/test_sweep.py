"""Tenant isolation sweep: every route with a path parameter, called by another organisation, answers 404
and changes nothing.

Routes are discovered from the OpenAPI document and the app's route table, so a new `{id}` route is swept
automatically, and the test fails until this file knows which resource its parameter names (and, for a route
that takes a body, a body that would succeed for the owner).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import orjson
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.factories import (
    Account,
    assert_error,
    count_rows,
    create_api_key,
    create_client,
    create_invoice,
    create_order,
    register,
)
from tests.integrations.sweep import create_integration_job
from tests.webhooks.helpers import create_webhook, send_webhook_test

# Which resource each path parameter names.
PARAM_KINDS = {
    "client_id": "client",
    "order_id": "order",
    "invoice_id": "invoice",
    "key_id": "api_key",
    "webhook_id": "webhook",
    "delivery_id": "webhook_delivery",
    "upload_id": "upload",
    "workflow_id": "workflow",
    "integration_id": "integration",
    "job_id": "job",
}

# Where the owner reads each kind of resource back, to prove it did not change.
READ_URLS = {
    "client": "/api/v1/clients/{}",
    "order": "/api/v1/orders/{}",
    "invoice": "/api/v1/invoices/{}",
    "api_key": "/api/v1/api-keys/{}",
    "webhook": "/api/v1/webhooks/{}",
    "webhook_delivery": "/api/v1/webhooks/{webhook}/deliveries/{}",
    "upload": "/api/v1/documents/{}",
    "workflow": "/api/v1/workflows/{}",
    "integration": "/api/v1/integrations/{}",
    "job": "/api/v1/jobs/{}",
}

# Bodies that succeed for the owner, so that only the tenancy check can refuse the intruder.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/clients/{client_id}"): {"name": "Taken over"},
    ("PATCH", "/api/v1/orders/{order_id}/status"): {"status": "processing"},
    ("PATCH", "/api/v1/invoices/{invoice_id}"): {"notes": "Taken over"},
    ("PATCH", "/api/v1/invoices/{invoice_id}/status"): {"status": "sent"},
    ("POST", "/api/v1/invoices/{invoice_id}/credit-notes"): {"lines": [{"position": 1, "quantity": "1"}]},
    ("POST", "/api/v1/invoices/{invoice_id}/payments"): {"amount": "1.00"},
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"description": "Taken over"},
    ("PATCH", "/api/v1/integrations/{integration_id}"): {"description": "Taken over"},
}

# Routes that need the resources in another state than `make_resources` leaves them to succeed for the owner
# (only an issued invoice can be credited). The intruder is refused before any state check either way.
PREPARE: dict[tuple[str, str], tuple[str, str, dict[str, Any]]] = {
    ("POST", "/api/v1/invoices/{invoice_id}/credit-notes"): (
        "invoice",
        "/api/v1/invoices/{}/status",
        {"status": "sent"},
    ),
    ("POST", "/api/v1/invoices/{invoice_id}/payments"): ("invoice", "/api/v1/invoices/{}/status", {"status": "sent"}),
}

TABLES = (
    "clients",
    "orders",
    "order_items",
    "invoices",
    "invoice_lines",
    "api_keys",
    "events",
    "audit_logs",
    "idempotency_keys",
    "number_sequences",
    "payments",
    "invoice_allowance_charges",
    "imported_documents",
    "webhook_endpoints",
    "webhook_deliveries",
    "uploads",
    "integrations",
    "integration_jobs",
    "integration_job_items",
    "sent_records",
)

# Owner requests that cannot succeed in the sweep's app, with the answer that shows they passed the tenancy
# check: that app runs no workflows (tests/conftest.py), so an upload stays queued and has no files yet, and
# its workflow is not failed, which a retry needs; the integration job has finished, so there is nothing to cancel.
OWNER_ANSWERS: dict[tuple[str, str], tuple[int, str]] = {
    ("GET", "/api/v1/documents/{upload_id}/download"): (409, "DOCUMENT_NOT_READY"),
    ("POST", "/api/v1/workflows/{workflow_id}/retry"): (409, "WORKFLOW_NOT_FAILED"),
    ("POST", "/api/v1/jobs/{job_id}/cancel"): (409, "JOB_FINISHED"),
}


@dataclass(frozen=True)
class IdRoute:
    method: str
    path: str
    params: tuple[str, ...]
    has_body: bool


def discover(client: TestClient) -> list[IdRoute]:
    """Every (method, path) with a path parameter, from /openapi.json and from the route table."""
    found: dict[tuple[str, str], IdRoute] = {}
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            params = tuple(p["name"] for p in op.get("parameters", []) if p.get("in") == "path")
            if params or "{" in path:
                found[(method.upper(), path)] = IdRoute(method.upper(), path, params, "requestBody" in op)
    # Routes hidden from the schema (include_in_schema=False) still serve requests: they must be known too.
    # FastAPI wraps included routers; `iter_route_contexts` flattens them (plain route list on older versions).
    flatten = getattr(fastapi.routing, "iter_route_contexts", lambda routes: routes)
    for route in flatten(client.app.routes):  # type: ignore[attr-defined]
        path = getattr(route, "path", None)
        if not path or "{" not in path:
            continue
        for method in getattr(route, "methods", None) or ():
            if method in {"HEAD", "OPTIONS"} or (method, path) in found:
                continue
            params = tuple(part.strip("{}").split(":")[0] for part in path.split("/") if part.startswith("{"))
            found[(method, path)] = IdRoute(method, path, params, method in {"POST", "PUT", "PATCH"})
    # The token is the credential, not a tenant-scoped id: tests/documents/test_documents_api.py covers
    # links that name another organisation's file.
    found.pop(("GET", "/api/v1/downloads/{token}"), None)
    return sorted(found.values(), key=lambda r: (r.path, r.method))


def make_resources(client: TestClient, owner: Account) -> dict[str, str]:
    """One of every kind of resource; the order stays pending and uninvoiced, the invoice a draft."""
    buyer = create_client(client, owner)
    webhook = create_webhook(client, owner)
    integration, job = create_integration_job(client, owner)
    upload = upload_seed(client, owner)
    return {
        "client": buyer["id"],
        "order": create_order(client, owner, buyer["id"])["id"],
        "invoice": create_invoice(client, owner, buyer["id"])["id"],
        "api_key": create_api_key(client, owner)["id"],
        "webhook": webhook["id"],
        "webhook_delivery": send_webhook_test(client, owner, webhook["id"])["id"],
        "upload": upload["id"],
        "workflow": upload["workflow_id"],  # the upload's
        "integration": integration,
        "job": job,
    }


def upload_seed(client: TestClient, owner: Account) -> dict[str, Any]:
    seed = {
        "invoice_number": "SEED-1",
        "issue_date": "2026-11-02",
        "currency": "EUR",
        "client": {"name": "Seed Buyer BV"},
        "items": [{"description": "Work", "quantity": "1", "unit_price": "100.00", "vat_rate": "21"}],
    }
    files = {"file": ("invoice_data.json", orjson.dumps(seed), "application/json")}
    r = client.post("/api/v1/documents", files=files, headers=owner.headers)
    assert r.status_code == 202, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def url_for(route: IdRoute, ids: dict[str, str]) -> str:
    url = route.path
    for name in route.params:
        url = url.replace("{" + name + "}", ids[PARAM_KINDS[name]])
    return url


def call(client: TestClient, route: IdRoute, url: str, headers: dict[str, str]) -> Any:
    body = BODIES.get((route.method, route.path))
    return client.request(route.method, url, json=body, headers=headers)


def snapshot(client: TestClient, owner: Account, ids: dict[str, str], db: Engine) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for kind, resource_id in ids.items():
        r = client.get(READ_URLS[kind].format(resource_id, **ids), headers=owner.headers)
        assert r.status_code == 200, r.text
        state[kind] = r.json()["data"]
    state["rows"] = {table: count_rows(db, table) for table in TABLES}
    return state


def test_every_id_route_is_known_to_the_sweep(client: TestClient) -> None:
    routes = discover(client)
    assert routes, "no routes with a path parameter were found"
    problems = []
    for route in routes:
        unknown = [p for p in route.params if p not in PARAM_KINDS]
        if unknown or not route.params:
            problems.append(f"{route.method} {route.path}: add its path parameter(s) {unknown} to PARAM_KINDS")
        if route.has_body and (route.method, route.path) not in BODIES:
            problems.append(f"{route.method} {route.path}: add a body that succeeds for the owner to BODIES")
    for method, path in BODIES:
        if not any(r.method == method and r.path == path for r in routes):
            problems.append(f"BODIES names {method} {path}, which no longer exists")
    assert not problems, "\n".join(problems)


def test_another_organisation_gets_404_on_every_id_route_and_changes_nothing(client: TestClient, db: Engine) -> None:
    owner = register(client, org="Owner BV")
    intruder = register(client, org="Intruder BV")
    ids = make_resources(client, owner)
    make_resources(client, intruder)  # the intruder has resources of its own
    routes = discover(client)
    before = snapshot(client, owner, ids, db)

    for route in routes:
        r = call(client, route, url_for(route, ids), intruder.headers)
        error = assert_error(r, 404)
        assert error["code"].endswith("NOT_FOUND"), (route, r.text)

    assert snapshot(client, owner, ids, db) == before


def test_an_intruders_api_key_cannot_tell_foreign_ids_from_missing_ones(client: TestClient, db: Engine) -> None:
    owner = register(client, org="Owner BV")
    intruder = register(client, org="Intruder BV")
    ids = make_resources(client, owner)
    key = create_api_key(client, intruder)["key"]
    before = snapshot(client, owner, ids, db)
    missing = {kind: str(uuid.uuid4()) for kind in ids}

    for route in discover(client):
        foreign = call(client, route, url_for(route, ids), {"X-API-Key": key})
        absent = call(client, route, url_for(route, missing), {"X-API-Key": key})
        assert foreign.status_code in (403, 404), (route, foreign.text)
        assert (foreign.status_code, foreign.json()["error"]["code"]) == (
            absent.status_code,
            absent.json()["error"]["code"],
        ), route
        assert foreign.json()["error"]["message"] == absent.json()["error"]["message"], route

    assert snapshot(client, owner, ids, db) == before


def test_unknown_ids_are_404_for_the_owner_too(client: TestClient) -> None:
    owner = register(client)
    make_resources(client, owner)
    missing = {kind: str(uuid.uuid4()) for kind in READ_URLS}
    for route in discover(client):
        assert_error(call(client, route, url_for(route, missing), owner.headers), 404)


def test_the_same_requests_succeed_for_the_owner(client: TestClient) -> None:
    """The control: the sweep's requests are valid, so its 404s come from the tenancy check alone."""
    owner = register(client)
    for route in discover(client):
        ids = make_resources(client, owner)
        if (route.method, route.path) in PREPARE:
            kind, url, body = PREPARE[(route.method, route.path)]
            prepared = client.patch(url.format(ids[kind]), json=body, headers=owner.headers)
            assert prepared.status_code == 200, prepared.text
        r = call(client, route, url_for(route, ids), owner.headers)
        if (route.method, route.path) in OWNER_ANSWERS:
            assert_error(r, *OWNER_ANSWERS[(route.method, route.path)])
            continue
        assert 200 <= r.status_code < 300, (route, r.text)
