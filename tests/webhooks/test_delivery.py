"""Delivering to a real local receiver: signatures it verifies, retries on the schedule, success, death,
redelivery, and the SSRF guard at delivery time. The scheduler's clock (`now`) is driven by the test."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from invoiceflow.core.db import Database
from invoiceflow.webhooks.delivery import (
    CLAIM_LEASE,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    DeliveryState,
    attempt_delivery,
    due_deliveries,
)
from invoiceflow.webhooks.fanout import fan_out_pending
from invoiceflow.webhooks.models import WebhookDelivery
from invoiceflow.webhooks.signing import verify_signature
from tests.auth.helpers import ok
from tests.factories import Account, create_client, register
from tests.webhooks.helpers import BASE, Received, create_webhook, run_receiver, send_webhook_test

T0 = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)


def no_jitter() -> float:
    return 0.0


def verifying(secret: str, *, fail_first: int = 0) -> Any:
    """A receiver's logic: 401 unless the signature verifies; then 500 for the first `fail_first`."""
    state = {"valid": 0}

    def answer(_n: int, request: Received) -> int:
        h = request.headers
        if not verify_signature(
            secret, h.get("x-invoiceflow-timestamp"), request.body, h.get("x-invoiceflow-signature")
        ):
            return 401
        state["valid"] += 1
        return 500 if state["valid"] <= fail_first else 200

    return answer


async def fanned_out(database: Database) -> int:
    async with database.write_sessions() as session:
        created = await fan_out_pending(session)
        await session.commit()
    return created


async def delivery_row(database: Database, delivery_id: uuid.UUID) -> WebhookDelivery:
    async with database.read_sessions() as session:
        row = (await session.execute(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id))).scalar_one()
        return row


async def attempt(database: Database, delivery_id: uuid.UUID, now: datetime, **kw: Any) -> DeliveryState:
    kw.setdefault("allow_private_networks", True)
    return await attempt_delivery(database, delivery_id, now=now, jitter=no_jitter, **kw)


def hook_with_event(client: TestClient, url: str, **overrides: Any) -> tuple[Account, dict[str, Any], dict[str, Any]]:
    acct = register(client)
    hook = create_webhook(client, acct, url=url, **overrides)
    buyer = create_client(client, acct, name="Receiver Test NV")
    return acct, hook, buyer


@pytest.mark.anyio
async def test_retries_until_the_receiver_accepts_and_every_attempt_is_signed(
    private_client: TestClient, database: Database
) -> None:
    with run_receiver(lambda n, r: 0) as receiver:
        acct, hook, buyer = hook_with_event(private_client, receiver.url, event_types=["ClientCreated"])
        receiver.answer = verifying(hook["secret"], fail_first=2)
        assert await fanned_out(database) == 1
        (delivery_id,) = await due_deliveries(database, T0)

        first = await attempt(database, delivery_id, T0)
        assert (first.status, first.attempts, first.last_status_code, first.attempted) == ("failed", 1, 500, True)
        assert first.next_attempt_at == T0 + RETRY_DELAYS[0] == T0 + timedelta(seconds=30)
        assert await due_deliveries(database, T0 + timedelta(seconds=29)) == []

        early = await attempt(database, delivery_id, T0 + timedelta(seconds=10))
        assert (early.attempted, early.attempts, len(receiver.requests)) == (False, 1, 1)

        at = first.next_attempt_at
        assert await due_deliveries(database, at) == [delivery_id]
        second = await attempt(database, delivery_id, at)
        assert (second.status, second.attempts, second.last_status_code) == ("failed", 2, 500)
        assert second.next_attempt_at == at + timedelta(minutes=2)

        assert second.next_attempt_at is not None
        third = await attempt(database, delivery_id, second.next_attempt_at)
        assert (third.status, third.attempts, third.last_status_code, third.next_attempt_at) == (
            "succeeded",
            3,
            200,
            None,
        )
        again = await attempt(database, delivery_id, second.next_attempt_at + timedelta(hours=1))
        assert (again.attempted, again.status) == (False, "succeeded")

    assert [r.answered for r in receiver.requests] == [500, 500, 200]
    bodies = {r.body for r in receiver.requests}
    assert len(bodies) == 1, "every attempt sends the same event"
    event = json.loads(bodies.pop())
    assert set(event) == {"id", "type", "created_at", "organization_id", "data"}
    assert (event["type"], event["organization_id"]) == ("ClientCreated", acct.organization_id)
    assert event["data"]["client_id"] == buyer["id"]
    for request in receiver.requests:
        assert request.headers["x-invoiceflow-event-id"] == event["id"]
        assert request.headers["x-invoiceflow-event-type"] == "ClientCreated"
        assert request.headers["x-invoiceflow-signature"].startswith("v1=")
        assert request.headers["content-type"] == "application/json"
        assert request.path == "/hooks"

    row = await delivery_row(database, delivery_id)
    assert (row.status, row.attempts, row.last_status_code, row.last_response, row.last_error) == (
        "succeeded",
        3,
        200,
        "status 200",
        None,
    )
    assert row.delivered_at == second.next_attempt_at
    assert row.last_duration_ms is not None
    assert row.last_duration_ms >= 0
    log = ok(private_client.get(f"{BASE}/{hook['id']}/deliveries", headers=acct.headers))["items"]
    assert [(d["id"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        (str(delivery_id), "succeeded", 3, 200)
    ]
    assert log[0]["event_id"] == event["id"]


@pytest.mark.anyio
async def test_a_receiver_holding_a_wrong_secret_rejects_every_attempt(
    private_client: TestClient, database: Database
) -> None:
    with run_receiver(verifying("whsec_not-the-endpoint-secret-000")) as receiver:
        _acct, hook, _buyer = hook_with_event(private_client, receiver.url)
        await fanned_out(database)
        (delivery_id,) = await due_deliveries(database, T0)
        state = await attempt(database, delivery_id, T0)
    assert (state.status, state.last_status_code, state.last_error) == ("failed", 401, "HTTP 401")
    (request,) = receiver.requests
    assert request.answered == 401
    h = request.headers
    assert not verify_signature(
        "whsec_not-the-endpoint-secret-000", h["x-invoiceflow-timestamp"], request.body, h["x-invoiceflow-signature"]
    )
    assert verify_signature(hook["secret"], h["x-invoiceflow-timestamp"], request.body, h["x-invoiceflow-signature"])


@pytest.mark.anyio
async def test_a_rotated_secret_signs_the_next_attempt(private_client: TestClient, database: Database) -> None:
    with run_receiver(lambda n, r: 500) as receiver:
        acct, hook, _buyer = hook_with_event(private_client, receiver.url)
        await fanned_out(database)
        (delivery_id,) = await due_deliveries(database, T0)
        await attempt(database, delivery_id, T0)
        rotated = ok(private_client.post(f"{BASE}/{hook['id']}/rotate-secret", headers=acct.headers))
        receiver.answer = verifying(rotated["secret"])
        state = await attempt(database, delivery_id, T0 + timedelta(minutes=1))
    assert state.status == "succeeded"
    old, new = receiver.requests
    assert verify_signature(
        hook["secret"], old.headers["x-invoiceflow-timestamp"], old.body, old.headers["x-invoiceflow-signature"]
    )
    assert not verify_signature(
        hook["secret"], new.headers["x-invoiceflow-timestamp"], new.body, new.headers["x-invoiceflow-signature"]
    )


@pytest.mark.anyio
async def test_a_delivery_dies_after_the_schedule_and_redeliver_revives_it(
    private_client: TestClient, database: Database
) -> None:
    with run_receiver(lambda n, r: 503) as receiver:
        acct, hook, _buyer = hook_with_event(private_client, receiver.url)
        await fanned_out(database)
        (delivery_id,) = await due_deliveries(database, T0)
        now = T0
        times = []
        for n in range(1, MAX_ATTEMPTS + 1):
            state = await attempt(database, delivery_id, now)
            times.append(now)
            assert state.attempts == n
            if n < MAX_ATTEMPTS:
                assert state.status == "failed"
                assert state.next_attempt_at == now + RETRY_DELAYS[n - 1]
                now = state.next_attempt_at
        assert (state.status, state.next_attempt_at, state.last_status_code) == ("dead", None, 503)
        assert times[-1] - times[0] >= timedelta(hours=24)
        assert len(receiver.requests) == MAX_ATTEMPTS
        assert await due_deliveries(database, now + timedelta(days=30)) == []
        assert (await attempt(database, delivery_id, now + timedelta(days=1))).attempted is False

        url = f"{BASE}/{hook['id']}/deliveries/{delivery_id}/redeliver"
        ok(private_client.post(url, headers=acct.headers), 202)
        receiver.answer = verifying(hook["secret"])
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert await due_deliveries(database, later) == [delivery_id]
        revived = await attempt(database, delivery_id, later)
    assert (revived.status, revived.attempts, revived.last_status_code) == ("succeeded", 1, 200)
    assert len(receiver.requests) == MAX_ATTEMPTS + 1
    assert len({r.headers["x-invoiceflow-event-id"] for r in receiver.requests}) == 1


@pytest.mark.anyio
async def test_a_claimed_attempt_keeps_others_away_until_its_lease_ends(
    private_client: TestClient, database: Database
) -> None:
    """A crash between claim and outcome leaves the delivery due again once the lease has run out."""
    with run_receiver(lambda n, r: 200) as receiver:
        acct = register(private_client)
        hook = create_webhook(private_client, acct, url=receiver.url)
        delivery = send_webhook_test(private_client, acct, hook["id"])
        delivery_id = uuid.UUID(delivery["id"])
        async with database.write_sessions() as session:
            row = await session.get(WebhookDelivery, delivery_id)
            assert row is not None
            row.next_attempt_at = T0 + CLAIM_LEASE  # what a claim at T0 leaves behind
            await session.commit()
        assert await due_deliveries(database, T0 + timedelta(minutes=1)) == []
        assert (await attempt(database, delivery_id, T0 + timedelta(minutes=1))).attempted is False
        assert await due_deliveries(database, T0 + CLAIM_LEASE) == [delivery_id]
        state = await attempt(database, delivery_id, T0 + CLAIM_LEASE)
    assert (state.status, len(receiver.requests)) == ("succeeded", 1)
    assert receiver.requests[0].headers["x-invoiceflow-event-type"] == "WebhookTest"


@pytest.mark.anyio
async def test_a_deleted_or_disabled_endpoint_gets_nothing(private_client: TestClient, database: Database) -> None:
    with run_receiver(lambda n, r: 200) as receiver:
        acct = register(private_client)
        gone = create_webhook(private_client, acct, url=receiver.url)
        paused = create_webhook(private_client, acct, url=receiver.url)
        first = uuid.UUID(send_webhook_test(private_client, acct, gone["id"])["id"])
        second = uuid.UUID(send_webhook_test(private_client, acct, paused["id"])["id"])
        ok(private_client.delete(f"{BASE}/{gone['id']}", headers=acct.headers))
        ok(private_client.patch(f"{BASE}/{paused['id']}", json={"enabled": False}, headers=acct.headers))
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert await due_deliveries(database, later) == []
        dead = await attempt(database, first, later)
        off = await attempt(database, second, later)
    assert (dead.status, dead.last_error, dead.attempted) == ("dead", "endpoint deleted", False)
    assert (off.status, off.last_error) == ("dead", "endpoint disabled")
    assert receiver.requests == []


@pytest.mark.anyio
async def test_the_address_is_checked_again_at_delivery_time(private_client: TestClient, database: Database) -> None:
    """Endpoints saved while private networks were allowed (or whose name has come to resolve inside) are
    not called when they are not allowed."""
    with run_receiver(lambda n, r: 200) as receiver:
        acct = register(private_client)
        port = int(receiver.url.split(":")[2].split("/")[0])
        named = create_webhook(private_client, acct, url=f"https://localhost:{port}/hooks")
        plain = create_webhook(private_client, acct, url=f"http://localhost:{port}/hooks")
        later = datetime.now(UTC) + timedelta(seconds=1)
        refused = {}
        for hook in (named, plain):
            delivery_id = uuid.UUID(send_webhook_test(private_client, acct, hook["id"])["id"])
            refused[hook["id"]] = await attempt(database, delivery_id, later, allow_private_networks=False)
        assert receiver.requests == []
        for state in refused.values():
            assert (state.status, state.attempts, state.last_status_code) == ("failed", 1, None)
        assert refused[named["id"]].last_error == "localhost resolves to a non-public address (127.0.0.1)"
        assert refused[plain["id"]].last_error == "must be an https:// URL"

        retry_at = refused[plain["id"]].next_attempt_at
        assert retry_at is not None
        accepted = await attempt(database, refused[plain["id"]].id, retry_at)
    assert accepted.status == "succeeded"
    (request,) = receiver.requests
    # Sent to the address that was checked, under the name the user gave.
    assert request.headers["host"] == f"localhost:{port}"


@pytest.mark.anyio
async def test_an_unreachable_receiver_is_a_failed_attempt(private_client: TestClient, database: Database) -> None:
    from tests.servers import free_port

    acct = register(private_client)
    hook = create_webhook(private_client, acct, url=f"http://127.0.0.1:{free_port()}/hooks")
    delivery_id = uuid.UUID(send_webhook_test(private_client, acct, hook["id"])["id"])
    state = await attempt(database, delivery_id, datetime.now(UTC) + timedelta(seconds=1))
    assert (state.status, state.attempts, state.last_status_code) == ("failed", 1, None)
    assert state.last_error is not None
    assert "Connect" in state.last_error


@pytest.mark.anyio
async def test_redirects_are_not_followed(private_client: TestClient, database: Database) -> None:
    with run_receiver(lambda n, r: 307) as receiver:
        acct = register(private_client)
        hook = create_webhook(private_client, acct, url=receiver.url)
        delivery_id = uuid.UUID(send_webhook_test(private_client, acct, hook["id"])["id"])
        state = await attempt(database, delivery_id, datetime.now(UTC) + timedelta(seconds=1))
    assert (state.status, state.last_status_code, len(receiver.requests)) == ("failed", 307, 1)
