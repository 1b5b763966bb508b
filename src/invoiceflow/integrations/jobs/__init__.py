"""Running an integration job: fetch → validate → deduplicate → push → record, page by page.

The job is built from four calls a durable workflow can wrap (each is safe to run again):

* `create_job(session, actor, integration, …)`: the job row, in the caller's transaction (flush only);
* `start_job(db, job_id)`: takes the integration's run lock (see below); True when this job holds it;
* `process_page(db, job_id, page_no)`: one page, recorded or replayed (a DBOS step);
* `finish_job(db, job_id, error=…)`: final status, counters, duration, lock released, metrics and Slack;
* `cancel_job(session, actor, job)`: a queued job is cancelled at once; a running one is asked to stop
  (`cancel_requested_at`): `process_page` fetches no further page, and `finish_job` ends it `cancelled`.
  A page already pushing is recorded first, so every push the destination accepted is in the ledger.

`run_job` strings them together in-process (the API's fallback, the command line, tests).

How a page is handled, and why nothing is pushed twice:

1. fetch from the job's cursor; check every document (validation in worker processes, identity, SHA-256);
2. transaction A: look the page's invoices up in the ledger (one query), decide each document (send,
   duplicate, changed, invalid) and insert its item; a document to send is inserted as `pushing` with its
   Idempotency-Key. Committed *before* anything is pushed;
3. push the `pushing` items, at most `max_concurrency` at a time;
4. transaction B: the items' outcomes and the destination's answers, the ledger rows of what was sent, the
   job's counters and cursor (and the integration's), `pages_done + 1` guarded by the page number, so a
   page is recorded once.

Run again after a crash at any point, the page is fetched again from the same cursor (it was not advanced),
its items are found, and only the `pushing` ones are pushed again, with the key they were first pushed
with: the destination keeps one copy (the protocol dedupes by Idempotency-Key). Keys are derived from the
destination, invoice and content, so another job that meets the same invoice before it reached the ledger
sends the same key too.

The run lock: `integrations.active_job_id` with a lease (`active_until`), taken by `start_job` and renewed by
every page transaction, which also checks it. Two jobs of one integration (a manual and a scheduled one)
therefore never process pages at the same time: the second waits for the lock (`run_job`) and then finds in
the ledger what the first sent. A lock left by a crashed process is taken over once its lease has passed.

The cursor: a plain job starts from the integration's cursor and advances both. A forced job
(`force_processing`) starts from the beginning and re-sends what it meets. A job limited to `invoice_ids`
starts from the beginning, handles only those documents and leaves the integration's cursor alone (it skips
the others, which a plain job must still see). When a push fails because the destination is unavailable
(retries exhausted, circuit open), the page is recorded but the cursor is not advanced and the job fails:
the next run fetches the page again and sends what did not arrive.
"""

from invoiceflow.integrations.jobs.connections import close_connectors, default_connectors, own_kinds
from invoiceflow.integrations.jobs.core import (
    LEASE,
    ConnectorFactory,
    IntegrationBusy,
    JobNotFound,
    JobSummary,
    PageResult,
    cancel_job,
    create_job,
    start_job,
)
from invoiceflow.integrations.jobs.pages import process_page
from invoiceflow.integrations.jobs.run import finish_job, run_job
from invoiceflow.integrations.jobs.schedules import (
    SCHEDULE_GRACE,
    create_scheduled_jobs,
    last_fire_time,
    schedule_trigger,
)

__all__ = [
    "LEASE",
    "SCHEDULE_GRACE",
    "ConnectorFactory",
    "IntegrationBusy",
    "JobNotFound",
    "JobSummary",
    "PageResult",
    "cancel_job",
    "close_connectors",
    "create_job",
    "create_scheduled_jobs",
    "default_connectors",
    "finish_job",
    "last_fire_time",
    "own_kinds",
    "process_page",
    "run_job",
    "schedule_trigger",
    "start_job",
]
