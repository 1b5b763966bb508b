"""Order status transitions: pending -> processing -> completed; cancelled from any state but completed."""

from __future__ import annotations

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("processing", "cancelled"),
    "processing": ("completed", "cancelled"),
    "completed": (),
    "cancelled": (),
}
STATUSES = tuple(TRANSITIONS)


def allowed(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())
