"""What workflow steps need from the process that runs them, set once when DBOS is launched.

DBOS itself is a process-wide singleton and its steps are module-level functions, so their collaborators
(database, storage, notifier) are process-wide too: `install` at launch, `current` in a step.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from invoiceflow.core.db import Database
from invoiceflow.core.settings import Settings
from invoiceflow.documents.service import DocumentStore
from invoiceflow.notifications.service import Notifier


@dataclass
class WorkflowDeps:
    settings: Settings
    db: Database
    store: DocumentStore
    notifier: Notifier
    # The DBOSClient, for steps that start workflows in their own transaction (scheduled integration runs).
    client: Any = None
    # Set when a step records events, so the event dispatcher delivers them without waiting for its tick.
    events_recorded: asyncio.Event = field(default_factory=asyncio.Event)


_current: WorkflowDeps | None = None


def install(deps: WorkflowDeps | None) -> None:
    global _current
    _current = deps


def current() -> WorkflowDeps:
    if _current is None:
        raise RuntimeError("workflow dependencies are not installed: this process did not launch workflows")
    return _current
