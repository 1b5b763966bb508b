"""Fail points: named places where a test can make the process die on the spot, as a power cut would.

`INVOICEFLOW_FAILPOINTS=invoice.email,invoice.publish` makes the first pass through each named point kill
the process with SIGKILL (no cleanup, no flush), which is how the crash tests interrupt a workflow inside
a step, after its side effect and before DBOS records it. Unset (always, outside those tests), a fail
point costs one set lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "INVOICEFLOW_FAILPOINTS"
_armed = frozenset(name.strip() for name in os.environ.get(ENV, "").split(",") if name.strip())


def failpoint(name: str) -> None:
    if name in _armed:
        os.kill(os.getpid(), signal.SIGKILL)
