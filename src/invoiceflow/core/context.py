"""Who is acting and from where: passed explicitly from the router into services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

Role = Literal["admin", "member"]


@dataclass(frozen=True, slots=True)
class Actor:
    organization_id: uuid.UUID
    user_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    role: Role
    ip_address: str | None = None
    user_agent: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
