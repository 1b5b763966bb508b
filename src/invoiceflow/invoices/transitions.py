"""The invoice status table. `overdue` is normally set by the system's overdue sweep."""

from __future__ import annotations

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("sent", "cancelled"),
    "sent": ("paid", "overdue"),
    "overdue": ("paid",),
    "paid": (),
    "cancelled": (),
}
STATUSES = tuple(TRANSITIONS)
# A sent invoice is a legal document: it is never edited or hard-deleted (corrections are credit notes).
EDITABLE = frozenset({"draft"})
DELETABLE = frozenset({"draft", "cancelled"})


def allowed(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())
