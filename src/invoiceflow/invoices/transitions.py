"""The status tables of invoices and credit notes. `overdue` is normally set by the system's overdue sweep.

A credit note has no `overdue`: the seller owes the money, so there is nothing to chase. Its `paid` means
the credit was settled (refunded or set off against another invoice).
"""

from __future__ import annotations

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("sent", "cancelled"),
    "sent": ("paid", "overdue"),
    "overdue": ("paid",),
    "paid": (),
    "cancelled": (),
}
CREDIT_NOTE_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "draft": ("sent", "cancelled"),
    "sent": ("paid",),
    "paid": (),
    "cancelled": (),
}
TABLES: dict[str, dict[str, tuple[str, ...]]] = {"invoice": TRANSITIONS, "credit_note": CREDIT_NOTE_TRANSITIONS}
STATUSES = tuple(TRANSITIONS)
# A sent invoice is a legal document: it is never edited or hard-deleted (corrections are credit notes).
EDITABLE = frozenset({"draft"})
DELETABLE = frozenset({"draft", "cancelled"})
# An invoice can be credited once it was issued, until its lines are fully credited.
CREDITABLE = frozenset({"sent", "overdue", "paid"})


def allowed(status: str, kind: str = "invoice") -> tuple[str, ...]:
    return TABLES.get(kind, TRANSITIONS).get(status, ())
