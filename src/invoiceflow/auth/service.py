"""Account use cases. Services flush; the request edge commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import anyio
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoiceflow.auth.models import ApiKey, AuthSession, PasswordResetToken, RefreshToken, User
from invoiceflow.auth.schemas import (
    ApiKeyCreate,
    OrganizationUpdate,
    PageQuery,
    RegisterRequest,
    TokenPair,
    UserCreate,
)
from invoiceflow.auth.security import Passwords, encode_access_token, new_secret, sha256_hex
from invoiceflow.core.context import Actor
from invoiceflow.core.db import utcnow
from invoiceflow.core.errors import Conflict, NotFound, TooManyRequests, Unauthorized, ValidationFailed
from invoiceflow.core.listing import page_by_created_at
from invoiceflow.core.models import Organization
from invoiceflow.core.numbering import PatternError, validate_pattern
from invoiceflow.core.ratelimit import Limiter
from invoiceflow.core.records import record_audit, record_event
from invoiceflow.core.settings import Settings


@dataclass(frozen=True)
class AuthConfig:
    settings: Settings
    secret_key: str
    passwords: Passwords
    limiter: Limiter


RESET_EMAILS_PER_HOUR = 3


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def _hash(cfg: AuthConfig, password: str) -> str:
    return await anyio.to_thread.run_sync(cfg.passwords.hash, password)


async def _verify(cfg: AuthConfig, password_hash: str, password: str) -> bool:
    return await anyio.to_thread.run_sync(cfg.passwords.verify, password_hash, password)


async def _issue_tokens(session: AsyncSession, cfg: AuthConfig, user: User, auth_session: AuthSession) -> TokenPair:
    refresh = new_secret("ifr_")
    session.add(
        RefreshToken(
            session_id=auth_session.id,
            token_hash=sha256_hex(refresh),
            expires_at=utcnow() + timedelta(seconds=cfg.settings.refresh_token_ttl_seconds),
        )
    )
    ttl = cfg.settings.access_token_ttl_seconds
    access = encode_access_token(
        secret=cfg.secret_key,
        user_id=user.id,
        organization_id=user.organization_id,
        session_id=auth_session.id,
        role=user.role,
        ttl=ttl,
    )
    await session.flush()
    return TokenPair(access_token=access, expires_in=ttl, refresh_token=refresh)


async def _start_session(
    session: AsyncSession, cfg: AuthConfig, user: User, ip: str | None, ua: str | None
) -> TokenPair:
    auth_session = AuthSession(id=uuid.uuid4(), user_id=user.id, ip_address=ip, user_agent=(ua or "")[:500] or None)
    session.add(auth_session)
    return await _issue_tokens(session, cfg, user, auth_session)


async def _email_taken(session: AsyncSession, email: str) -> bool:
    return (await session.execute(select(User.id).where(User.email == email))).first() is not None


async def register(
    session: AsyncSession, cfg: AuthConfig, data: RegisterRequest, *, ip: str | None, ua: str | None
) -> tuple[User, Organization, TokenPair]:
    email = normalize_email(str(data.email))
    if await _email_taken(session, email):
        raise Conflict("An account with this email already exists", code="EMAIL_TAKEN", details={"field": "email"})
    org = Organization(id=uuid.uuid4(), name=data.organization_name, legal_name=data.organization_name)
    session.add(org)
    await session.flush()
    user = User(
        id=uuid.uuid4(),
        organization_id=org.id,
        email=email,
        name=data.name,
        password_hash=await _hash(cfg, data.password),
        role="admin",
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("An account with this email already exists", code="EMAIL_TAKEN") from None
    actor = Actor(org.id, user.id, None, "admin", ip, ua)
    record_event(
        session,
        organization_id=org.id,
        type="UserRegistered",
        resource_type="user",
        resource_id=user.id,
        payload={"user_id": str(user.id), "email": email, "organization_id": str(org.id)},
    )
    record_audit(session, actor, action="user.register", resource_type="user", resource_id=user.id)
    tokens = await _start_session(session, cfg, user, ip, ua)
    return user, org, tokens


def _throttle_keys(email: str, ip: str | None) -> list[str]:
    return [f"login:email:{email}", f"login:ip:{ip or '-'}"]


async def login(
    session: AsyncSession, cfg: AuthConfig, email: str, password: str, *, ip: str | None, ua: str | None
) -> TokenPair:
    """Check credentials. Failures count per email and per IP; past the limit the caller waits."""
    email = normalize_email(email)
    limit = cfg.settings.login_max_failures
    window = cfg.settings.login_lockout_seconds
    # IPs get a larger budget than single accounts: many users may sit behind one NAT.
    budgets = [limit, limit * 4]
    for key, budget in zip(_throttle_keys(email, ip), budgets, strict=True):
        state = await cfg.limiter.peek(key, budget, window)
        if not state.allowed:
            raise TooManyRequests(
                "Too many failed login attempts; try again later",
                code="LOGIN_THROTTLED",
                details={"retry_after": state.reset_after},
                headers={"Retry-After": str(state.reset_after)},
            )
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    ok = await _verify(cfg, user.password_hash if user else cfg.passwords.dummy_hash, password)
    if user is None or not ok or not user.is_active:
        for key, budget in zip(_throttle_keys(email, ip), budgets, strict=True):
            await cfg.limiter.hit(key, budget, window)
        raise Unauthorized("Invalid email or password", code="INVALID_CREDENTIALS")
    await cfg.limiter.reset(_throttle_keys(email, ip)[0], window)
    user.last_login_at = utcnow()
    actor = Actor(user.organization_id, user.id, None, user.role, ip, ua)  # type: ignore[arg-type]
    record_event(
        session,
        organization_id=user.organization_id,
        type="UserLoggedIn",
        resource_type="user",
        resource_id=user.id,
        payload={"user_id": str(user.id), "ip_address": ip},
    )
    record_audit(session, actor, action="user.login", resource_type="user", resource_id=user.id)
    return await _start_session(session, cfg, user, ip, ua)


async def refresh(session: AsyncSession, cfg: AuthConfig, raw_token: str) -> TokenPair:
    """Rotate: the presented token is spent and a new pair is issued.

    Presenting a spent token again means it leaked: the whole session is revoked.
    """
    token = (
        await session.execute(select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(raw_token)))
    ).scalar_one_or_none()
    if token is None:
        raise Unauthorized("Invalid refresh token", code="INVALID_REFRESH_TOKEN")
    auth_session = await session.get(AuthSession, token.session_id)
    if auth_session is None or auth_session.revoked_at is not None:
        raise Unauthorized("Session ended; log in again", code="INVALID_REFRESH_TOKEN")
    now = utcnow()
    if token.used_at is not None:
        auth_session.revoked_at = now
        await session.flush()
        # The revocation must persist even though the request fails: commit is done by the caller.
        raise _ReuseDetected()
    if token.expires_at <= now:
        raise Unauthorized("Refresh token expired; log in again", code="INVALID_REFRESH_TOKEN")
    # Mark spent with a guarded UPDATE so two concurrent refreshes cannot both succeed.
    spent = await session.execute(
        update(RefreshToken).where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None)).values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise Unauthorized("Invalid refresh token", code="INVALID_REFRESH_TOKEN")
    user = await session.get(User, auth_session.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Account disabled", code="INVALID_REFRESH_TOKEN")
    return await _issue_tokens(session, cfg, user, auth_session)


class _ReuseDetected(Exception):
    """Internal: the router commits the session revocation, then answers 401."""


ReuseDetected = _ReuseDetected


async def logout(session: AsyncSession, actor: Actor, session_id: uuid.UUID | None, raw_refresh: str | None) -> None:
    target = session_id
    if raw_refresh:
        token = (
            await session.execute(select(RefreshToken).where(RefreshToken.token_hash == sha256_hex(raw_refresh)))
        ).scalar_one_or_none()
        owner = await session.get(AuthSession, token.session_id) if token is not None else None
        # Someone else's refresh token must not divert the caller's logout away from its own session.
        if owner is not None and owner.user_id == actor.user_id:
            target = owner.id
    if target is None:
        return
    auth_session = await session.get(AuthSession, target)
    if auth_session is None or auth_session.user_id != actor.user_id:
        return
    if auth_session.revoked_at is None:
        auth_session.revoked_at = utcnow()
        record_event(
            session,
            organization_id=actor.organization_id,
            type="UserLoggedOut",
            resource_type="user",
            resource_id=str(actor.user_id),
            payload={"user_id": str(actor.user_id)},
        )
        record_audit(session, actor, action="user.logout", resource_type="user", resource_id=actor.user_id)
    await session.flush()


async def request_password_reset(
    session: AsyncSession, cfg: AuthConfig, email: str, *, ip: str | None, ua: str | None
) -> tuple[User, str] | None:
    """Create a single-use token when the account exists. The caller answers 202 either way."""
    email = normalize_email(email)
    # At most a few reset emails per address per hour, so nobody can flood a mailbox through us.
    # Counted for unknown addresses too, so the answer's timing tells nothing.
    window = await cfg.limiter.hit(f"reset:{email}", RESET_EMAILS_PER_HOUR, 3600)
    if not window.allowed:
        return None
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None or not user.is_active:
        return None
    raw = new_secret("ifp_")
    session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=sha256_hex(raw),
            expires_at=utcnow() + timedelta(seconds=cfg.settings.password_reset_ttl_seconds),
        )
    )
    actor = Actor(user.organization_id, user.id, None, user.role, ip, ua)  # type: ignore[arg-type]
    record_event(
        session,
        organization_id=user.organization_id,
        type="PasswordResetRequested",
        resource_type="user",
        resource_id=user.id,
        payload={"user_id": str(user.id)},
    )
    record_audit(session, actor, action="user.password_reset_requested", resource_type="user", resource_id=user.id)
    await session.flush()
    return user, raw


async def confirm_password_reset(
    session: AsyncSession, cfg: AuthConfig, raw_token: str, new_password: str, *, ip: str | None, ua: str | None
) -> None:
    now = utcnow()
    token = (
        await session.execute(select(PasswordResetToken).where(PasswordResetToken.token_hash == sha256_hex(raw_token)))
    ).scalar_one_or_none()
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise ValidationFailed.field("token", "invalid, used or expired reset token")
    spent = await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.id == token.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise ValidationFailed.field("token", "invalid, used or expired reset token")
    user = await session.get(User, token.user_id)
    if user is None:
        raise ValidationFailed.field("token", "invalid, used or expired reset token")
    user.password_hash = await _hash(cfg, new_password)
    # The other reset emails still in the mailbox must not reset the new password again.
    await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    # A reset ends every existing login of the account.
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    actor = Actor(user.organization_id, user.id, None, user.role, ip, ua)  # type: ignore[arg-type]
    record_event(
        session,
        organization_id=user.organization_id,
        type="PasswordResetCompleted",
        resource_type="user",
        resource_id=user.id,
        payload={"user_id": str(user.id)},
    )
    record_audit(session, actor, action="user.password_reset", resource_type="user", resource_id=user.id)
    await session.flush()


async def create_user(session: AsyncSession, cfg: AuthConfig, actor: Actor, data: UserCreate) -> User:
    email = normalize_email(str(data.email))
    if await _email_taken(session, email):
        raise Conflict("An account with this email already exists", code="EMAIL_TAKEN", details={"field": "email"})
    user = User(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        email=email,
        name=data.name,
        password_hash=await _hash(cfg, data.password),
        role=data.role,
    )
    session.add(user)
    await session.flush()
    record_event(
        session,
        organization_id=actor.organization_id,
        type="UserCreated",
        resource_type="user",
        resource_id=user.id,
        payload={"user_id": str(user.id), "email": email, "role": data.role},
    )
    record_audit(session, actor, action="user.create", resource_type="user", resource_id=user.id)
    return user


async def list_users(session: AsyncSession, actor: Actor, page: PageQuery) -> tuple[list[User], str | None]:
    """The organisation's users, oldest (its founder) first."""
    stmt = select(User).where(User.organization_id == actor.organization_id)
    return await page_by_created_at(session, stmt, User, cursor=page.cursor, limit=page.limit, descending=False)


async def create_api_key(
    session: AsyncSession, cfg: AuthConfig, actor: Actor, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    if data.expires_at is not None and data.expires_at <= utcnow():
        raise ValidationFailed.field("expires_at", "must be in the future")
    raw = new_secret("ifk_")
    key = ApiKey(
        id=uuid.uuid4(),
        organization_id=actor.organization_id,
        created_by_user_id=actor.user_id,
        name=data.name,
        prefix=raw[:12],
        key_hash=sha256_hex(raw),
        rate_limit_per_minute=data.rate_limit_per_minute or cfg.settings.default_api_key_rate_limit,
        expires_at=data.expires_at,
    )
    session.add(key)
    await session.flush()
    record_event(
        session,
        organization_id=actor.organization_id,
        type="ApiKeyCreated",
        resource_type="api_key",
        resource_id=key.id,
        payload={"api_key_id": str(key.id), "name": key.name},
    )
    record_audit(session, actor, action="api_key.create", resource_type="api_key", resource_id=key.id)
    return key, raw


async def list_api_keys(session: AsyncSession, actor: Actor, page: PageQuery) -> tuple[list[ApiKey], str | None]:
    """The organisation's API keys, revoked ones too, oldest first."""
    stmt = select(ApiKey).where(ApiKey.organization_id == actor.organization_id)
    return await page_by_created_at(session, stmt, ApiKey, cursor=page.cursor, limit=page.limit, descending=False)


async def get_api_key(session: AsyncSession, actor: Actor, key_id: uuid.UUID) -> ApiKey:
    key = await session.get(ApiKey, key_id)
    if key is None or key.organization_id != actor.organization_id:
        raise NotFound("API key not found")
    return key


async def revoke_api_key(session: AsyncSession, actor: Actor, key_id: uuid.UUID) -> ApiKey:
    key = await get_api_key(session, actor, key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        record_event(
            session,
            organization_id=actor.organization_id,
            type="ApiKeyRevoked",
            resource_type="api_key",
            resource_id=key.id,
            payload={"api_key_id": str(key.id)},
        )
        record_audit(session, actor, action="api_key.revoke", resource_type="api_key", resource_id=key.id)
        await session.flush()
    return key


async def get_organization(session: AsyncSession, actor: Actor) -> Organization:
    org = await session.get(Organization, actor.organization_id)
    if org is None:  # pragma: no cover - an actor always belongs to an organisation
        raise NotFound("Organization not found")
    return org


async def update_organization(session: AsyncSession, actor: Actor, data: OrganizationUpdate) -> Organization:
    org = await get_organization(session, actor)
    changes = data.model_dump(exclude_unset=True)
    for field in (
        "name",
        "default_currency",
        "payment_terms_days",
        "invoice_number_pattern",
        "order_number_pattern",
        "credit_note_number_pattern",
        "reminder_policy",
        "timezone",
    ):
        if field in changes and changes[field] is None:
            raise ValidationFailed.field(field, "may not be null")
    for field in ("invoice_number_pattern", "order_number_pattern", "credit_note_number_pattern"):
        if field in changes:
            try:
                validate_pattern(changes[field])
            except PatternError as exc:
                raise ValidationFailed.field(field, str(exc)) from None
    changes = {k: v for k, v in changes.items() if getattr(org, k) != v}
    if not changes:
        return org
    for field, value in changes.items():
        setattr(org, field, value)
    org.updated_at = utcnow()
    record_event(
        session,
        organization_id=org.id,
        type="OrganizationUpdated",
        resource_type="organization",
        resource_id=org.id,
        payload={"changed": sorted(changes)},
    )
    record_audit(
        session,
        actor,
        action="organization.update",
        resource_type="organization",
        resource_id=org.id,
        details={"changed": sorted(changes)},
    )
    await session.flush()
    return org
