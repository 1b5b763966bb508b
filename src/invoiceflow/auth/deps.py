"""Who is calling: a bearer access token or an `X-API-Key`, resolved to an Actor."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select, update

from invoiceflow.auth.models import ApiKey, AuthSession, User
from invoiceflow.auth.security import decode_access_token, sha256_hex
from invoiceflow.core.api import add_response_headers
from invoiceflow.core.context import Actor
from invoiceflow.core.db import driver_connection, utcnow
from invoiceflow.core.errors import Forbidden, TooManyRequests, Unauthorized
from invoiceflow.core.runtime import Runtime, RuntimeDep, SessionDep

_bearer = HTTPBearer(auto_error=False, description="JWT access token from /auth/login")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key created at /api-keys")


# Built once: these run on every request, and building SQL expressions costs more than running them.
_SESSION_QUERY = (
    select(User.organization_id, User.role, User.is_active, AuthSession.revoked_at)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(User.id == bindparam("user_id"), AuthSession.id == bindparam("session_id"))
)
# The same query for the driver: it runs on every request, and the driver runs it at a third of the CPU.
_PG_SESSION_QUERY = (
    "SELECT u.organization_id, u.role, u.is_active, s.revoked_at "
    "FROM users u JOIN auth_sessions s ON s.user_id = u.id WHERE u.id = $1 AND s.id = $2"
)
_API_KEY_QUERY = select(
    ApiKey.id, ApiKey.organization_id, ApiKey.rate_limit_per_minute, ApiKey.revoked_at, ApiKey.expires_at
).where(ApiKey.key_hash == bindparam("key_hash"))


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def current_actor(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Actor:
    ip = client_ip(request)
    ua = request.headers.get("user-agent")
    if api_key:
        return await _actor_from_api_key(session, runtime, api_key, ip, ua)
    if bearer is None:
        raise Unauthorized("Authentication required: send a bearer token or an X-API-Key header")
    claims = decode_access_token(bearer.credentials, secret=runtime.secret_key)
    if claims is None:
        raise Unauthorized("Invalid or expired access token", code="INVALID_TOKEN")
    try:
        user_id = uuid.UUID(claims["sub"])
        session_id = uuid.UUID(claims["sid"])
    except (ValueError, TypeError):
        raise Unauthorized("Invalid access token", code="INVALID_TOKEN") from None
    if session.bind.dialect.name == "postgresql":
        # A read: it needs no transaction, so a request that writes nothing else never sends BEGIN.
        conn = await driver_connection(session, begin=False)
        row = await conn.fetchrow(_PG_SESSION_QUERY, user_id, session_id)
    else:
        params = {"user_id": user_id, "session_id": session_id}
        row = (await session.execute(_SESSION_QUERY, params)).mappings().one_or_none()
    if row is None or not row["is_active"] or row["revoked_at"] is not None:
        raise Unauthorized("Session ended; log in again", code="INVALID_TOKEN")
    return Actor(
        organization_id=row["organization_id"],
        user_id=user_id,
        api_key_id=None,
        role=row["role"],
        ip_address=ip,
        user_agent=ua,
    )


async def _actor_from_api_key(
    session: SessionDep, runtime: RuntimeDep, raw: str, ip: str | None, ua: str | None
) -> Actor:
    if len(raw) > 200:
        raise Unauthorized("Invalid API key", code="INVALID_API_KEY")
    key = (
        await session.execute(
            select(
                ApiKey.id, ApiKey.organization_id, ApiKey.rate_limit_per_minute, ApiKey.revoked_at, ApiKey.expires_at
            ).where(ApiKey.key_hash == sha256_hex(raw))
        )
    ).one_or_none()
    if key is None or key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= utcnow()):
        raise Unauthorized("Invalid or revoked API key", code="INVALID_API_KEY")
    window = await runtime.limiter.hit(f"key:{key.id}", key.rate_limit_per_minute, 60)
    if not window.allowed:
        raise TooManyRequests(
            f"Rate limit of {key.rate_limit_per_minute} requests per minute exceeded",
            details={"limit": key.rate_limit_per_minute, "retry_after": window.reset_after},
            headers=window.headers(),
        )
    add_response_headers(window.headers())
    if window.remaining == key.rate_limit_per_minute - 1:
        # First use in this minute: record it, off the request path (minute resolution is enough).
        runtime.spawn(_touch_api_key(runtime, key.id))
    return Actor(
        organization_id=key.organization_id,
        user_id=None,
        api_key_id=key.id,
        role="member",
        ip_address=ip,
        user_agent=ua,
    )


async def _touch_api_key(runtime: Runtime, key_id: uuid.UUID) -> None:
    # Queued behind the process's other writers: on SQLite, a write beside the request's own waited in
    # SQLite's busy handler (a first request with a fresh key took ~0.8 s).
    async with runtime.db.locked_write_session() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
        await session.commit()


ActorDep = Annotated[Actor, Depends(current_actor)]


async def require_admin(actor: ActorDep) -> Actor:
    if not actor.is_admin:
        raise Forbidden("This action needs the admin role", code="ADMIN_REQUIRED")
    return actor


AdminDep = Annotated[Actor, Depends(require_admin)]
