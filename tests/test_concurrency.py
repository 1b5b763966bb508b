"""Gapless invoice numbers and idempotent creation under real concurrency: two server processes, one PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from invoiceflow.core.models import IdempotencyRecord
from invoiceflow.invoices.models import Invoice
from tests.factories import PASSWORD, client_payload
from tests.servers import run_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`invoiceflow serve --workers 2` on the session's PostgreSQL database (SQLite is single-process)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("concurrency across processes needs PostgreSQL")
    with run_server(database_url=database_url, data_dir=tmp_path_factory.mktemp("server"), workers=2) as base:
        yield base


def _setup_org(base: str, org: str) -> tuple[dict[str, str], str]:
    """Register an organisation and one client through the server; return auth headers and the client id."""
    with httpx.Client(base_url=base, timeout=30) as http:
        r = http.post(
            "/api/v1/auth/register",
            json={
                "email": f"owner-{uuid.uuid4().hex[:10]}@example.com",
                "password": PASSWORD,
                "name": "Owner",
                "organization_name": org,
            },
        )
        assert r.status_code == 201, r.text
        headers = {"Authorization": f"Bearer {r.json()['data']['tokens']['access_token']}"}
        r = http.post("/api/v1/clients", json=client_payload(), headers=headers)
        assert r.status_code == 201, r.text
        return headers, r.json()["data"]["id"]


def _invoice_body(client_id: str, n: int) -> dict[str, Any]:
    today = datetime.now(UTC).date()  # the server's business date
    return {
        "client_id": client_id,
        "issue_date": today.isoformat(),
        "due_date": (today + timedelta(days=30)).isoformat(),
        "currency": "EUR",
        "items": [{"description": f"Job {n}", "quantity": "1", "unit_price": f"{100 + n}.00", "vat_rate": "21"}],
    }


async def _post_all(base: str, requests: list[tuple[dict[str, str], dict[str, Any]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        start = asyncio.Event()

        async def post(headers: dict[str, str], body: dict[str, Any]) -> httpx.Response:
            await start.wait()  # release them together
            return await http.post("/api/v1/invoices", json=body, headers=headers)

        tasks = [asyncio.ensure_future(post(h, b)) for h, b in requests]
        await asyncio.sleep(0)
        start.set()
        return await asyncio.gather(*tasks)


def test_concurrent_creations_get_consecutive_numbers(pg_server: str, client: TestClient, db: Engine) -> None:
    acme, acme_client = _setup_org(pg_server, "Acme BV")
    other, other_client = _setup_org(pg_server, "Other BV")
    year = datetime.now(UTC).date().year
    # 50 for one organisation, interleaved with 10 for another whose counter is independent.
    batch = [(acme, _invoice_body(acme_client, n)) for n in range(50)]
    for i in range(10):
        batch.insert(i * 5, (other, _invoice_body(other_client, 1000 + i)))

    responses = asyncio.run(_post_all(pg_server, batch))

    assert [r.status_code for r in responses] == [201] * 60, [r.text for r in responses if r.status_code != 201]
    acme_data = [r.json()["data"] for (h, _), r in zip(batch, responses, strict=True) if h is acme]
    other_data = [r.json()["data"] for (h, _), r in zip(batch, responses, strict=True) if h is other]
    # Exactly 1..N per organisation: no gap, no duplicate.
    assert sorted(d["invoice_number"] for d in acme_data) == [f"INV-{year}-{n:05d}" for n in range(1, 51)]
    assert sorted(d["invoice_number"] for d in other_data) == [f"INV-{year}-{n:05d}" for n in range(1, 11)]

    acme_org = _org_of(db, acme_data[0]["id"])
    with db.connect() as conn:
        rows = conn.execute(select(Invoice.id, Invoice.invoice_number).where(Invoice.organization_id == acme_org)).all()
    assert len(rows) == 50
    assert {(str(i), n) for i, n in rows} == {(d["id"], d["invoice_number"]) for d in acme_data}


def test_concurrent_retries_with_one_idempotency_key_create_one_invoice(
    pg_server: str, client: TestClient, db: Engine
) -> None:
    headers, client_id = _setup_org(pg_server, "Idem BV")
    year = datetime.now(UTC).date().year
    body = _invoice_body(client_id, 7)
    key = f"create-{uuid.uuid4().hex}"

    responses = asyncio.run(_post_all(pg_server, [({**headers, "Idempotency-Key": key}, body)] * 20))

    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses if r.status_code != 201]
    ids = {r.json()["data"]["id"] for r in responses}
    assert len(ids) == 1
    numbers = {r.json()["data"]["invoice_number"] for r in responses}
    assert numbers == {f"INV-{year}-00001"}
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 19

    org_id = _org_of(db, ids.pop())
    with db.connect() as conn:
        count = conn.execute(select(func.count()).select_from(Invoice).where(Invoice.organization_id == org_id))
        assert count.scalar_one() == 1
        records = conn.execute(select(func.count()).select_from(IdempotencyRecord).where(IdempotencyRecord.key == key))
        assert records.scalar_one() == 1

    # The 19 replays consumed no numbers: the next invoice is 00002.
    with httpx.Client(base_url=pg_server, timeout=30) as http:
        r = http.post("/api/v1/invoices", json=_invoice_body(client_id, 8), headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["invoice_number"] == f"INV-{year}-00002"


def _org_of(db: Engine, invoice_id: str) -> uuid.UUID:
    with db.connect() as conn:
        return conn.execute(select(Invoice.organization_id).where(Invoice.id == uuid.UUID(invoice_id))).scalar_one()
