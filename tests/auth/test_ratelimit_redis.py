"""Scale-out rate limits: counters in Redis, shared by every API process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from invoiceflow.main import create_app
from tests.auth.helpers import API, api_key, bearer, err, fresh_window, ok
from tests.conftest import REDIS_URL, make_settings, need_service
from tests.factories import PASSWORD, register
from tests.servers import free_port, run_server

LIMIT = 5


@pytest.mark.slow
def test_two_processes_share_one_key_budget_through_redis(database_url: str, tmp_path: Path) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("two processes on one SQLite file is not the scale-out mode")
    need_service("Redis", 6379)
    # No FLUSHDB: other test runs may be counting in this Redis database at the same time. The key is
    # new, so its counter starts empty (checked below).

    env = {"INVOICEFLOW_REDIS_URL": REDIS_URL}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        run_server(database_url=database_url, data_dir=tmp_path / "a", extra_env=env) as server_a,
        run_server(database_url=database_url, data_dir=tmp_path / "b", extra_env=env) as server_b,
        httpx.Client(timeout=10) as http,
    ):
        email = f"redis-{uuid.uuid4().hex[:10]}@example.com"
        reg = http.post(
            f"{server_a}{API}/auth/register",
            json={"email": email, "password": PASSWORD, "name": "Scale", "organization_name": "Scale Out BV"},
        )
        token = ok(reg, 201)["tokens"]["access_token"]
        # Tokens and keys live in the shared database: server B accepts what server A issued.
        created = ok(
            http.post(
                f"{server_b}{API}/api-keys",
                json={"name": "shared", "rate_limit_per_minute": LIMIT},
                headers=bearer(token),
            ),
            201,
        )

        with redis.Redis.from_url(REDIS_URL) as r:
            assert list(r.scan_iter(f"invoiceflow:rl:key:{created['id']}:*")) == []

        fresh_window(60, need_seconds=10)
        servers = (server_a, server_b)
        for i in range(LIMIT):
            resp = http.get(f"{servers[i % 2]}{API}/clients", headers=api_key(created["key"]))
            ok(resp)
            assert resp.headers["X-RateLimit-Remaining"] == str(LIMIT - 1 - i), (i, servers[i % 2])

        sixth = http.get(f"{servers[LIMIT % 2]}{API}/clients", headers=api_key(created["key"]))
        error = err(sixth, 429, "RATE_LIMITED")
        assert error["details"]["limit"] == LIMIT
        assert 0 < int(sixth.headers["Retry-After"]) <= 60
        # And the other process agrees.
        err(http.get(f"{servers[(LIMIT + 1) % 2]}{API}/clients", headers=api_key(created["key"])), 429, "RATE_LIMITED")

    with redis.Redis.from_url(REDIS_URL) as r:
        counters = [k.decode() for k in r.scan_iter(f"invoiceflow:rl:key:{created['id']}:*")]
        assert len(counters) == 1
        assert int(r.get(counters[0]) or 0) == LIMIT + 2


@pytest.fixture
def peer_address() -> str:
    """A unique client address (IPv6 documentation range).

    The per-address login counter lives in Redis beyond a test and is shared with any other test run
    on the same Redis; a fresh address keeps this test's budget its own.
    """
    h = uuid.uuid4().hex
    return f"2001:db8::{h[0:4]}:{h[4:8]}:{h[8:12]}:{h[12:16]}"


@pytest.fixture
def redis_app_client(client: TestClient, database_url: str, data_dir: Path, peer_address: str) -> Iterator[TestClient]:
    """A second app on the same (emptied) database whose limiter is Redis."""
    need_service("Redis", 6379)
    settings = make_settings(database_url, data_dir, redis_url=REDIS_URL)
    with TestClient(create_app(settings), raise_server_exceptions=False, client=(peer_address, 50000)) as app_client:
        yield app_client


def test_login_throttling_counts_in_redis(redis_app_client: TestClient, peer_address: str) -> None:
    acct = register(redis_app_client)
    fresh_window(900, need_seconds=10)

    def attempt(password: str) -> Any:
        return redis_app_client.post(f"{API}/auth/login", json={"email": acct.email, "password": password})

    # A success clears the account's failures (RedisLimiter.reset) ...
    for _ in range(4):
        err(attempt("wrong-password"), 401, "INVALID_CREDENTIALS")
    ok(attempt(PASSWORD))
    # ... and five fresh failures lock it (RedisLimiter.peek), even for the right password.
    for _ in range(5):
        err(attempt("wrong-password"), 401, "INVALID_CREDENTIALS")
    r = attempt(PASSWORD)
    err(r, 429, "LOGIN_THROTTLED")
    assert 0 < int(r.headers["Retry-After"]) <= 900
    with redis.Redis.from_url(REDIS_URL) as rd:
        (counter,) = list(rd.scan_iter(f"invoiceflow:rl:login:email:{acct.email}:*"))
        assert int(rd.get(counter) or 0) == 5
        assert 0 < rd.ttl(counter) <= 905
        # The per-address counter saw all nine failures: a success clears only the account's count.
        (by_address,) = list(rd.scan_iter(f"invoiceflow:rl:login:ip:{peer_address}:*"))
        assert int(rd.get(by_address) or 0) == 9


def test_an_unreachable_redis_answers_503_not_500(client: TestClient, database_url: str, data_dir: Path) -> None:
    """Rate limits fail closed: without its counter store the API refuses keyed traffic and logins."""
    acct = register(client)
    secret = ok(client.post(f"{API}/api-keys", json={"name": "k"}, headers=acct.headers), 201)["key"]
    settings = make_settings(database_url, data_dir, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings), raise_server_exceptions=False) as down:
        err(down.get(f"{API}/clients", headers=api_key(secret)), 503, "RATE_LIMITER_UNAVAILABLE")
        err(
            down.post(f"{API}/auth/login", json={"email": acct.email, "password": PASSWORD}),
            503,
            "RATE_LIMITER_UNAVAILABLE",
        )
        # Bearer-token traffic does not depend on the limiter.
        ok(down.get(f"{API}/clients", headers=acct.headers))
