"""Slack messages through a local HTTP server standing in for the incoming webhook, with delivery records."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine

from invoiceflow.core.db import Database
from invoiceflow.notifications.service import Notifier, job_failed_slack, workflow_failed_slack
from invoiceflow.notifications.transport import OutboxTransport, SlackWebhook, SlackWebhookError
from tests.factories import count_rows
from tests.notifications.conftest import SENDER, IssuedInvoice, SlackServer, delivery_rows

pytestmark = pytest.mark.anyio


def slack_notifier(database: Database, slack: SlackServer | None, tmp_path: Path) -> Notifier:
    return Notifier(
        db=database,
        email=OutboxTransport(tmp_path / "outbox"),
        sender=SENDER,
        slack=SlackWebhook(slack.url, timeout=5) if slack else None,
    )


async def test_a_job_failure_is_posted_once_with_its_details(
    database: Database, slack: SlackServer, issued: IssuedInvoice, db: Engine, tmp_path: Path
) -> None:
    notifier = slack_notifier(database, slack, tmp_path)
    job_id = uuid.uuid4()

    first = await job_failed_slack(
        notifier,
        organization_id=issued.organization_id,
        job_id=job_id,
        job_type="integration <run>",
        error="destination answered 500 & gave up <!channel>",
        details_url="https://app.example/jobs/1",
    )
    again = await job_failed_slack(
        notifier, organization_id=issued.organization_id, job_id=job_id, job_type="integration", error="later"
    )

    assert len(slack.payloads) == 1
    text = slack.payloads[0]["text"]
    assert f"`{job_id}` failed" in text
    assert "*integration &lt;run&gt;*" in text
    assert "destination answered 500 &amp; gave up &lt;!channel&gt;" in text
    assert "<!channel>" not in text
    assert "<https://app.example/jobs/1|Open the job>" in text
    assert first is not None
    assert again is not None
    assert (first.status, first.attempts, first.provider_response) == ("sent", 1, "200 ok")
    assert first.recipient == "slack:127.0.0.1"
    assert (again.id, again.delivered_now) == (first.id, False)
    [row] = delivery_rows(db, issued.organization_id)
    assert (row.channel, row.purpose, row.resource_type, row.resource_id) == ("slack", "job_failed", "job", str(job_id))
    # The webhook URL is a secret: nothing of it but the host is stored.
    assert "secret" not in (row.recipient + (row.subject or "") + (row.provider_response or ""))


async def test_a_500_from_slack_is_recorded_as_failed_and_the_retry_posts_it(
    database: Database, slack: SlackServer, issued: IssuedInvoice, db: Engine, tmp_path: Path
) -> None:
    notifier = slack_notifier(database, slack, tmp_path)
    slack.answer(500, "internal_error: " + "x" * 5000)

    with pytest.raises(SlackWebhookError) as raised:
        await workflow_failed_slack(
            notifier,
            organization_id=issued.organization_id,
            workflow_id="invoice-wf-1",
            step="email",
            error="SMTP down",
            resource_type="invoice",
            resource_id=issued.invoice_id,
        )
    assert raised.value.status_code == 500
    [failed] = delivery_rows(db, issued.organization_id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error is not None
    assert failed.last_error.startswith("SlackWebhookError: Slack webhook answered 500: internal_error")
    assert failed.provider_response is not None
    assert failed.provider_response.startswith("internal_error")
    assert len(failed.provider_response) <= 2000

    slack.answer(200, "ok")
    result = await workflow_failed_slack(
        notifier,
        organization_id=issued.organization_id,
        workflow_id="invoice-wf-1",
        step="email",
        error="SMTP down",
        resource_type="invoice",
        resource_id=issued.invoice_id,
    )

    assert result is not None
    assert (result.id, result.status, result.attempts, result.last_error) == (failed.id, "sent", 2, None)
    assert len(slack.payloads) == 2
    assert f"invoice `{issued.invoice_id}` failed at step *email*" in slack.payloads[1]["text"]


async def test_without_a_webhook_nothing_is_posted_or_recorded(
    database: Database, issued: IssuedInvoice, db: Engine, tmp_path: Path
) -> None:
    notifier = slack_notifier(database, None, tmp_path)
    result = await job_failed_slack(
        notifier, organization_id=issued.organization_id, job_id=uuid.uuid4(), job_type="integration", error="x"
    )
    assert result is None
    assert count_rows(db, "notification_deliveries") == 0
