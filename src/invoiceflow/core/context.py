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


SYSTEM_USER_AGENT = "invoiceflow-system"


def system_actor(organization_id: uuid.UUID) -> Actor:
    """The system acting for an organisation (scheduled jobs): no user, no API key.

    Its audit rows have neither actor column set and carry `SYSTEM_USER_AGENT` as their user agent.
    """
    return Actor(organization_id, None, None, "admin", user_agent=SYSTEM_USER_AGENT)
