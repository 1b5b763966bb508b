from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.factories import register


def _wait_for(outbox: Path, count: int, timeout: float = 5.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        if len(files) >= count:
            return files
        time.sleep(0.05)
    return sorted(outbox.glob("*.eml")) if outbox.exists() else []


def test_reset_emails_are_capped_per_address(client: TestClient) -> None:
    acct = register(client)
    outbox: Path = client.app.state.runtime.settings.outbox_dir  # type: ignore[attr-defined]
    before = {p.name for p in outbox.glob("*.eml")} if outbox.exists() else set()
    answers = [client.post("/api/v1/auth/password-reset", json={"email": acct.email}) for _ in range(5)]
    # Same answer every time: the cap reveals nothing.
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["data"]["message"] for r in answers}) == 1
    _wait_for(outbox, len(before) + 3)
    time.sleep(0.3)
    new = [p for p in outbox.glob("*.eml") if p.name not in before and acct.email in p.read_text()]
    assert len(new) == 3


def test_empty_organization_patch_records_no_event(client: TestClient) -> None:
    acct = register(client)
    assert client.patch("/api/v1/organization", json={}, headers=acct.headers).status_code == 200
    same = client.get("/api/v1/organization", headers=acct.headers).json()["data"]["name"]
    assert client.patch("/api/v1/organization", json={"name": same}, headers=acct.headers).status_code == 200
    events = client.get("/api/v1/events", params={"type": "OrganizationUpdated"}, headers=acct.headers).json()
    assert events["data"]["items"] == []


def test_api_key_last_used_at_is_recorded(client: TestClient) -> None:
    acct = register(client)
    created = client.post("/api/v1/api-keys", json={"name": "ci"}, headers=acct.headers).json()["data"]
    assert created["last_used_at"] is None
    assert client.get("/api/v1/clients", headers={"X-API-Key": created["key"]}).status_code == 200
    deadline = time.monotonic() + 5
    seen = None
    while time.monotonic() < deadline and seen is None:
        seen = client.get(f"/api/v1/api-keys/{created['id']}", headers=acct.headers).json()["data"]["last_used_at"]
        time.sleep(0.05)
    assert seen is not None
