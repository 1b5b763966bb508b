"""kill -9 in the middle of a job, in a real process, then run the job again: it completes, and the destination
accepted every invoice once (the pushes that were in flight are repeated with the same Idempotency-Key)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from invoiceflow.core.db import Database
from invoiceflow.integrations import jobs
from tests.integrations.helpers import (
    http_integration,
    load_job,
    make_integration,
    make_job,
    make_org,
    settings_for,
    valid_unique_examples,
)
from tests.integrations.partners import DestinationServer, Fault, SourceServer

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import asyncio, sys, uuid
from pathlib import Path
from invoiceflow.core.db import Database
from invoiceflow.integrations.jobs import run_job
from tests.integrations.helpers import settings_for

url, data_dir, job_id = sys.argv[1], Path(sys.argv[2]), uuid.UUID(sys.argv[3])

async def main() -> None:
    db = Database(url)
    await run_job(db, job_id, settings=settings_for(url, data_dir))

asyncio.run(main())
"""


@pytest.mark.anyio
async def test_kill_9_mid_job_then_rerun_sends_no_invoice_twice(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(database_url, tmp_path)
    documents = valid_unique_examples(15)
    concurrency = 3
    with SourceServer(documents) as source, DestinationServer() as destination:
        destination.set_faults(lambda _number, _key: Fault.slow(0.15))
        org = await make_org(database)
        integration = await make_integration(
            database,
            settings,
            org,
            http_integration(source.url, destination.url, page_size=5, destination={"max_concurrency": concurrency}),
        )
        job_id = await make_job(database, integration)

        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            database_url,
            str(tmp_path),
            str(job_id),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            # Past the first page, with pushes of the second one in flight (polled for at most a minute).
            for _ in range(6000):
                if destination.received_count >= 7 or child.returncode is not None:
                    break
                await asyncio.sleep(0.01)
            assert child.returncode is None, (await child.stderr.read()).decode() if child.stderr else ""
            child.kill()  # SIGKILL: no cleanup of any kind
        finally:
            await child.wait()
        killed_at = destination.received_count
        assert 7 <= killed_at < len(documents)
        crashed = await load_job(database, job_id)
        assert crashed.status == "running"

        destination.set_faults(None)
        summary = await jobs.run_job(database, job_id, settings=settings)

        assert (summary.status, summary.total, summary.processed, summary.failed) == ("completed", 15, 15, 0)
        assert destination.accepted_count == 15
        keys: dict[tuple[str, str], set[str | None]] = defaultdict(set)
        received: dict[tuple[str, str], int] = defaultdict(int)
        for request in destination.received:
            if request.invoice is None:  # cut off mid-request by the kill: nothing was accepted
                continue
            keys[request.invoice].add(request.key)
            received[request.invoice] += 1
        assert all(len(k) == 1 for k in keys.values()), "a resumed push used a fresh Idempotency-Key"
        # Only what was in flight when the process died went out a second time.
        assert sum(1 for n in received.values() if n > 1) <= concurrency
