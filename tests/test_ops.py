"""Operations surface: health checks, OpenAPI and docs, correlation ids, the error envelope for unknown routes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from invoiceflow.main import create_app
from tests.conftest import make_settings

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")

# DESIGN.md core routes that this build implements (method, path).
CORE_ROUTES = [
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/me"),
    ("post", "/api/v1/auth/password-reset"),
    ("post", "/api/v1/auth/password-reset/confirm"),
    ("get", "/api/v1/api-keys"),
    ("post", "/api/v1/api-keys"),
    ("get", "/api/v1/api-keys/{key_id}"),
    ("delete", "/api/v1/api-keys/{key_id}"),
    ("get", "/api/v1/organization"),
    ("patch", "/api/v1/organization"),
    ("get", "/api/v1/clients"),
    ("post", "/api/v1/clients"),
    ("get", "/api/v1/clients/{client_id}"),
    ("patch", "/api/v1/clients/{client_id}"),
    ("delete", "/api/v1/clients/{client_id}"),
    ("get", "/api/v1/orders"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders/{order_id}"),
    ("delete", "/api/v1/orders/{order_id}"),
    ("patch", "/api/v1/orders/{order_id}/status"),
    ("post", "/api/v1/orders/{order_id}/invoice"),
    ("get", "/api/v1/invoices"),
    ("post", "/api/v1/invoices"),
    ("get", "/api/v1/invoices/{invoice_id}"),
    ("patch", "/api/v1/invoices/{invoice_id}"),
    ("delete", "/api/v1/invoices/{invoice_id}"),
    ("patch", "/api/v1/invoices/{invoice_id}/status"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/audit-logs"),
    ("get", "/healthz"),
    ("get", "/readyz"),
]


def assert_envelope(body: dict[str, object], *, success: bool) -> None:
    assert body["success"] is success
    assert isinstance(body["timestamp"], str)
    assert TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    assert isinstance(body["correlation_id"], str)
    assert body["correlation_id"]


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert_envelope(body, success=True)
    assert body["data"]["status"] == "ok"
    assert body["data"]["version"]


def test_readyz_names_the_database(client: TestClient, database_url: str) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert_envelope(body, success=True)
    assert body["data"] == {"status": "ready", "database": database_url.split(":", 1)[0]}


def _number_properties(node: object, name: str = "") -> set[str]:
    """The names of every schema property documented as a JSON number (directly or in an anyOf)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("type") == "number":
            found.add(name)
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for prop, schema in value.items():
                    found |= _number_properties(schema, prop)
            else:
                found |= _number_properties(value, name)
    elif isinstance(node, list):
        for item in node:
            found |= _number_properties(item, name)
    return found


def test_openapi_lists_the_core_routes(client: TestClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "invoiceflow"
    missing = [(m, p) for m, p in CORE_ROUTES if m not in spec["paths"].get(p, {})]
    assert missing == []
    # Money is documented as a decimal string, never a JSON number; the only numbers are durations.
    numbers = sorted(_number_properties(spec))
    assert all(name.endswith("_seconds") for name in numbers), numbers


def test_docs_serve_html(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in r.text


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/no-such-route"])
def test_caller_correlation_id_is_echoed(client: TestClient, path: str) -> None:
    cid = "trace-1234.abc:XYZ_9"
    r = client.get(path, headers={"X-Correlation-ID": cid})
    assert r.headers["X-Correlation-ID"] == cid
    assert r.json()["correlation_id"] == cid


def test_correlation_id_generated_when_absent_or_malformed(client: TestClient) -> None:
    seen = set()
    for headers in ({}, {"X-Correlation-ID": "has spaces and <html>"}, {"X-Correlation-ID": "x" * 129}):
        r = client.get("/healthz", headers=headers)
        cid = r.headers["X-Correlation-ID"]
        assert re.fullmatch(r"[A-Za-z0-9._:-]{8,128}", cid), cid
        assert cid != headers.get("X-Correlation-ID")
        assert r.json()["correlation_id"] == cid
        seen.add(cid)
    assert len(seen) == 3  # a new one per request


def test_error_responses_carry_the_correlation_id(client: TestClient) -> None:
    r = client.get("/api/v1/invoices", headers={"X-Correlation-ID": "err-42"})
    assert r.status_code == 401
    assert r.headers["X-Correlation-ID"] == "err-42"
    assert r.json()["correlation_id"] == "err-42"


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v2/invoices"])
def test_unknown_route_is_a_404_envelope(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert_envelope(body, success=False)
    assert body["error"]["code"] == "NOT_FOUND"
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["details"] == {}
    assert body["correlation_id"] == r.headers["X-Correlation-ID"]


def test_wrong_method_is_a_405_envelope(client: TestClient) -> None:
    r = client.put("/healthz")
    assert r.status_code == 405
    body = r.json()
    assert_envelope(body, success=False)
    assert body["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_readyz_503_when_the_database_is_unreachable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(database_url="postgresql://postgres@127.0.0.1:1/nope", data_dir=tmp_path)
    with TestClient(create_app(settings), raise_server_exceptions=False) as unready:
        health = unready.get("/healthz")
        r = unready.get("/readyz", headers={"X-Correlation-ID": "ready-check"})
    # The process itself is alive; it is only not ready.
    assert health.status_code == 200
    assert r.status_code == 503
    body = r.json()
    assert_envelope(body, success=False)
    assert body["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert body["correlation_id"] == "ready-check"
    # Connection details stay in the log, not in the response.
    assert "127.0.0.1" not in r.text
    assert "readiness check failed" in caplog.text
