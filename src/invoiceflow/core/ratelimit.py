"""Fixed-window counters for API-key rate limits and login throttling.

In memory for the single embedded process; in Redis when `INVOICEFLOW_REDIS_URL` is set, so every API
process draws on the same budget.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from invoiceflow.core.errors import ServiceUnavailable


@dataclass(frozen=True, slots=True)
class Window:
    allowed: bool
    limit: int
    remaining: int
    reset_after: int  # seconds until the window resets

    def headers(self) -> dict[str, str]:
        h = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_after),
        }
        if not self.allowed:
            h["Retry-After"] = str(self.reset_after)
        return h


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int, *, cost: int = 1) -> Window: ...

    async def peek(self, key: str, limit: int, window_seconds: int) -> Window: ...

    async def reset(self, key: str, window_seconds: int) -> None: ...

    async def close(self) -> None: ...


def _window_start(now: float, window_seconds: int) -> int:
    return int(now // window_seconds) * window_seconds


def _result(count: int, limit: int, start: int, window_seconds: int, now: float) -> Window:
    reset_after = max(1, math.ceil(start + window_seconds - now))
    return Window(count <= limit, limit, max(0, limit - count), reset_after)


class MemoryLimiter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = asyncio.Lock()
        self._last_sweep = 0.0

    async def hit(self, key: str, limit: int, window_seconds: int, *, cost: int = 1) -> Window:
        now = time.time()
        start = _window_start(now, window_seconds)
        async with self._lock:
            if now - self._last_sweep > 60:
                self._sweep(now)
            count = self._counts.get((key, start), 0) + cost
            self._counts[(key, start)] = count
        return _result(count, limit, start, window_seconds, now)

    async def peek(self, key: str, limit: int, window_seconds: int) -> Window:
        now = time.time()
        start = _window_start(now, window_seconds)
        count = self._counts.get((key, start), 0)
        return Window(count < limit, limit, max(0, limit - count), max(1, math.ceil(start + window_seconds - now)))

    async def reset(self, key: str, window_seconds: int) -> None:
        start = _window_start(time.time(), window_seconds)
        self._counts.pop((key, start), None)

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        # Windows are at most a day long; anything older is dead.
        stale = [k for k in self._counts if k[1] < now - 86400]
        for k in stale:
            del self._counts[k]

    async def close(self) -> None:
        return None


class RedisLimiter:
    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def hit(self, key: str, limit: int, window_seconds: int, *, cost: int = 1) -> Window:
        now = time.time()
        start = _window_start(now, window_seconds)
        rkey = f"invoiceflow:rl:{key}:{start}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(rkey, cost)
                pipe.expire(rkey, window_seconds + 5)
                count, _ = await pipe.execute()
        except RedisError as exc:
            raise ServiceUnavailable("Rate limiter unavailable", code="RATE_LIMITER_UNAVAILABLE") from exc
        return _result(int(count), limit, start, window_seconds, now)

    async def peek(self, key: str, limit: int, window_seconds: int) -> Window:
        now = time.time()
        start = _window_start(now, window_seconds)
        try:
            raw = await self._redis.get(f"invoiceflow:rl:{key}:{start}")
        except RedisError as exc:
            raise ServiceUnavailable("Rate limiter unavailable", code="RATE_LIMITER_UNAVAILABLE") from exc
        count = int(raw or 0)
        return Window(count < limit, limit, max(0, limit - count), max(1, math.ceil(start + window_seconds - now)))

    async def reset(self, key: str, window_seconds: int) -> None:
        start = _window_start(time.time(), window_seconds)
        try:
            await self._redis.delete(f"invoiceflow:rl:{key}:{start}")
        except RedisError as exc:
            raise ServiceUnavailable("Rate limiter unavailable", code="RATE_LIMITER_UNAVAILABLE") from exc

    async def close(self) -> None:
        await self._redis.aclose()


def make_limiter(redis_url: str | None) -> Limiter:
    return RedisLimiter(redis_url) if redis_url else MemoryLimiter()
