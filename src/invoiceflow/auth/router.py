from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import Response

from invoiceflow.auth import service
from invoiceflow.auth.deps import ActorDep, AdminDep, _bearer, client_ip
from invoiceflow.auth.models import User
from invoiceflow.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    ApiKeyRead,
    LoginRequest,
    LogoutRequest,
    MeRead,
    OrganizationBrief,
    OrganizationRead,
    OrganizationUpdate,
    PageQuery,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
    RegisterResult,
    TokenPair,
    UserCreate,
    UserPage,
    UserRead,
)
from invoiceflow.auth.security import Passwords, decode_access_token
from invoiceflow.core import idempotency
from invoiceflow.core.api import Envelope, envelope
from invoiceflow.core.errors import Unauthorized
from invoiceflow.core.mailer import build_message, deliver
from invoiceflow.core.runtime import Runtime, RuntimeDep, SessionDep, after_commit

router = APIRouter(prefix="/api/v1")


async def auth_config(runtime: RuntimeDep) -> service.AuthConfig:
    passwords: Passwords = runtime.extras["passwords"]
    return service.AuthConfig(runtime.settings, runtime.secret_key, passwords, runtime.limiter)


ConfigDep = Annotated[service.AuthConfig, Depends(auth_config)]
IdemKey = Annotated[str | None, idempotency.HEADER]


@router.post("/auth/register", status_code=201, response_model=Envelope[RegisterResult], tags=["auth"])
async def register(data: RegisterRequest, request: Request, session: SessionDep, cfg: ConfigDep) -> Response:
    user, org, tokens = await service.register(
        session, cfg, data, ip=client_ip(request), ua=request.headers.get("user-agent")
    )
    return envelope(
        RegisterResult(
            user=UserRead.model_validate(user), organization=OrganizationBrief.model_validate(org), tokens=tokens
        ),
        status_code=201,
    )


@router.post("/auth/login", response_model=Envelope[TokenPair], tags=["auth"])
async def login(data: LoginRequest, request: Request, session: SessionDep, cfg: ConfigDep) -> Response:
    tokens = await service.login(
        session, cfg, data.email, data.password, ip=client_ip(request), ua=request.headers.get("user-agent")
    )
    return envelope(tokens)


@router.post("/auth/refresh", response_model=Envelope[TokenPair], tags=["auth"])
async def refresh(data: RefreshRequest, session: SessionDep, cfg: ConfigDep) -> Response:
    try:
        tokens = await service.refresh(session, cfg, data.refresh_token)
    except service.ReuseDetected:
        await session.commit()  # keep the revocation of the compromised session
        raise Unauthorized(
            "Refresh token was already used; the session has been revoked", code="REFRESH_TOKEN_REUSED"
        ) from None
    return envelope(tokens)


@router.post("/auth/logout", status_code=200, response_model=Envelope[dict[str, bool]], tags=["auth"])
async def logout(
    actor: ActorDep,
    session: SessionDep,
    runtime: RuntimeDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    data: LogoutRequest | None = None,
) -> Response:
    sid = None
    if bearer is not None:
        claims = decode_access_token(bearer.credentials, secret=runtime.secret_key)
        if claims is not None:
            sid = uuid.UUID(claims["sid"])
    await service.logout(session, actor, sid, data.refresh_token if data else None)
    return envelope({"logged_out": True})


@router.get("/auth/me", response_model=Envelope[MeRead], tags=["auth"])
async def me(actor: ActorDep, session: SessionDep) -> Response:
    org = await service.get_organization(session, actor)
    user = await session.get(User, actor.user_id) if actor.user_id else None
    return envelope(
        MeRead(
            user=UserRead.model_validate(user) if user else None,
            organization=OrganizationBrief.model_validate(org),
            role=actor.role,
            auth="api_key" if actor.api_key_id else "token",
            api_key_id=actor.api_key_id,
        )
    )


def _send_reset_mail(runtime: Runtime, to: str, raw_token: str) -> None:
    link = f"{runtime.settings.public_base_url}/reset-password?token={raw_token}"
    hours = runtime.settings.password_reset_ttl_seconds // 3600 or 1
    msg = build_message(
        sender=runtime.settings.mail_from,
        to=to,
        subject="Reset your invoiceflow password",
        text=(
            "Someone asked to reset the password of your invoiceflow account.\n\n"
            f"Reset token: {raw_token}\nOr open: {link}\n\n"
            f"The token works once and expires in {hours} hour(s). If you did not ask for this, ignore this email.\n"
        ),
    )
    deliver(msg, smtp_url=runtime.settings.smtp_url, outbox_dir=runtime.settings.outbox_dir)


@router.post("/auth/password-reset", status_code=202, response_model=Envelope[dict[str, str]], tags=["auth"])
async def password_reset(
    data: PasswordResetRequest, request: Request, session: SessionDep, cfg: ConfigDep, runtime: RuntimeDep
) -> Response:
    found = await service.request_password_reset(
        session, cfg, data.email, ip=client_ip(request), ua=request.headers.get("user-agent")
    )
    if found is not None:
        user, raw = found
        email = user.email

        async def send() -> None:
            await anyio.to_thread.run_sync(_send_reset_mail, runtime, email, raw)

        after_commit(session, send)
    # Same answer whether or not the account exists (no account enumeration).
    return envelope({"message": "If the account exists, a reset email is on its way."}, status_code=202)


@router.post("/auth/password-reset/confirm", response_model=Envelope[dict[str, bool]], tags=["auth"])
async def password_reset_confirm(
    data: PasswordResetConfirm, request: Request, session: SessionDep, cfg: ConfigDep
) -> Response:
    await service.confirm_password_reset(
        session, cfg, data.token, data.new_password, ip=client_ip(request), ua=request.headers.get("user-agent")
    )
    return envelope({"password_changed": True})


@router.get("/users", response_model=Envelope[UserPage], tags=["users"])
async def list_users(actor: AdminDep, session: SessionDep, page: Annotated[PageQuery, Query()]) -> Response:
    rows, cursor = await service.list_users(session, actor, page)
    return envelope(UserPage(items=[UserRead.model_validate(u) for u in rows], next_cursor=cursor, limit=page.limit))


@router.post("/users", status_code=201, response_model=Envelope[UserRead], tags=["users"])
async def create_user(
    data: UserCreate, actor: AdminDep, session: SessionDep, cfg: ConfigDep, request: Request, key: IdemKey = None
) -> Response:
    # Keyed with the server secret: a plain hash stored in the database would let anyone who reads it
    # test password guesses at SHA-256 speed, bypassing argon2.
    password_mac = hmac.new(cfg.secret_key.encode(), data.password.encode(), hashlib.sha256).hexdigest()
    body = data.model_dump(mode="json", exclude={"password"}) | {"password_mac": password_mac}
    record = await idempotency.begin(session, actor.organization_id, key, request.url.path, body)
    user = await service.create_user(session, cfg, actor, data)
    out = UserRead.model_validate(user).model_dump(mode="json")
    idempotency.complete(record, 201, out)
    return envelope(out, status_code=201)


@router.post("/api-keys", status_code=201, response_model=Envelope[ApiKeyCreated], tags=["api-keys"])
async def create_api_key(
    data: ApiKeyCreate, actor: AdminDep, session: SessionDep, cfg: ConfigDep, request: Request, key: IdemKey = None
) -> Response:
    record = await idempotency.begin(
        session, actor.organization_id, key, request.url.path, data.model_dump(mode="json")
    )
    api_key, raw = await service.create_api_key(session, cfg, actor, data)
    out = ApiKeyCreated.model_validate({**ApiKeyRead.model_validate(api_key).model_dump(), "key": raw}).model_dump(
        mode="json"
    )
    # The replay of a key creation must not reveal the secret a second time.
    idempotency.complete(record, 201, {**out, "key": None})
    return envelope(out, status_code=201)


@router.get("/api-keys", response_model=Envelope[ApiKeyPage], tags=["api-keys"])
async def list_api_keys(actor: AdminDep, session: SessionDep, page: Annotated[PageQuery, Query()]) -> Response:
    rows, cursor = await service.list_api_keys(session, actor, page)
    items = [ApiKeyRead.model_validate(k) for k in rows]
    return envelope(ApiKeyPage(items=items, next_cursor=cursor, limit=page.limit))


@router.get("/api-keys/{key_id}", response_model=Envelope[ApiKeyRead], tags=["api-keys"])
async def get_api_key(key_id: uuid.UUID, actor: AdminDep, session: SessionDep) -> Response:
    return envelope(ApiKeyRead.model_validate(await service.get_api_key(session, actor, key_id)))


@router.delete("/api-keys/{key_id}", response_model=Envelope[ApiKeyRead], tags=["api-keys"])
async def revoke_api_key(key_id: uuid.UUID, actor: AdminDep, session: SessionDep) -> Response:
    return envelope(ApiKeyRead.model_validate(await service.revoke_api_key(session, actor, key_id)))


@router.get("/organization", response_model=Envelope[OrganizationRead], tags=["organization"])
async def get_organization(actor: ActorDep, session: SessionDep) -> Response:
    return envelope(OrganizationRead.model_validate(await service.get_organization(session, actor)))


@router.patch("/organization", response_model=Envelope[OrganizationRead], tags=["organization"])
async def update_organization(data: OrganizationUpdate, actor: AdminDep, session: SessionDep) -> Response:
    return envelope(OrganizationRead.model_validate(await service.update_organization(session, actor, data)))
