"""Password hashing (argon2id), token hashing and JWT access tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ALGORITHM = "HS256"


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verifying against this when the account does not exist keeps login timing uniform.
        self.dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def new_secret(prefix: str = "", nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def encode_access_token(
    *, secret: str, user_id: uuid.UUID, organization_id: uuid.UUID, session_id: uuid.UUID, role: str, ttl: int
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "org": str(organization_id),
        "sid": str(session_id),
        "role": role,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(token: str, *, secret: str) -> dict[str, Any] | None:
    """The token's claims when its signature holds and it has not expired, else None.

    A verified token's claims are remembered (a token's signature never changes), so a client that
    reuses its token pays for the HMAC and JSON decoding once; the expiry is checked on every use.
    Whether the token's session is still alive is the caller's query, never cached.
    """
    cached = _verified.get((token, secret))
    if cached is not None:
        if cached["exp"] <= time.time():
            return None
        return cached
    claims = _verify(token, secret)
    if claims is not None:
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[(token, secret)] = claims
    return claims


_VERIFIED_MAX = 4096
_verified: dict[tuple[str, str], dict[str, Any]] = {}


def _verify(token: str, secret: str) -> dict[str, Any] | None:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "sid", "org", "typ"]}
        )
    except jwt.PyJWTError:
        return None
    if claims.get("typ") != "access":
        return None
    return claims
