"""A step that runs out of attempts leaves the workflow failed, visibly, with a Slack alert; a user's retry
runs it again from the failed step and it finishes, the email sent once."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from invoiceflow.main import create_app
from tests.conftest import _empty_tables, make_settings
from tests.factories import assert_error, create_client, create_invoice, register
from tests.notifications.conftest import RecordingHandler, SlackServer, SmtpServer, slack  # noqa: F401
from tests.servers import free_port
from tests.workflows.conftest import wait_for


def test_exhausted_retries_fail_visibly_and_a_retry_finishes(
    database_url: str,
    sync_engine: object,
    tmp_path: Path,
    slack: SlackServer,  # noqa: F811
) -> None:
    _empty_tables(sync_engine)  # type: ignore[arg-type]
    smtp = SmtpServer(free_port(), RecordingHandler())  # not started yet: every send is refused
    settings = make_settings(
        database_url,
        tmp_path,
        run_workflows=True,
        executor_id="test-retry",
        smtp_url=smtp.url(),
        slack_webhook_url=slack.url,
        workflow_retry_delay_scale=0.0001,
    )
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            account = register(client)
            buyer = create_client(client, account)
            invoice = create_invoice(client, account, buyer["id"])
            assert client.post(f"/api/v1/invoices/{invoice['id']}/send", headers=account.headers).status_code == 200
            url = f"/api/v1/invoices/{invoice['id']}/workflow"

            def status() -> str | None:
                view = client.get(url, headers=account.headers).json()["data"]
                return view["status"] if view["status"] in ("succeeded", "failed") else None

            assert wait_for(status) == "failed"
            view = client.get(url, headers=account.headers).json()["data"]
            steps = {s["name"]: s for s in view["steps"]}
            assert steps["documents"]["status"] == "succeeded"
            assert steps["email"]["status"] == "failed"
            assert steps["email"]["attempts"] == 8
            assert "Connection refused" in steps["email"]["error"] or "refused" in steps["email"]["error"].lower()
            assert steps["publish"]["status"] == "pending"
            assert len(slack.payloads) == 1
            assert f"invoice-{invoice['id']}" in slack.payloads[0]["text"]
            assert "email" in slack.payloads[0]["text"]

            # Members may look but not retry; a workflow that has not failed cannot be retried.
            member_retry = client.post(f"/api/v1/workflows/invoice-{invoice['id']}/retry")
            assert_error(member_retry, 401)

            smtp.start()
            retried = client.post(f"/api/v1/workflows/invoice-{invoice['id']}/retry", headers=account.headers)
            assert retried.status_code == 202, retried.text
            assert wait_for(status) == "succeeded"
            view = client.get(url, headers=account.headers).json()["data"]
            assert [s["status"] for s in view["steps"]] == ["succeeded"] * 3
            assert len(smtp.messages) == 1
            again = client.post(f"/api/v1/workflows/invoice-{invoice['id']}/retry", headers=account.headers)
            assert_error(again, 409, "WORKFLOW_NOT_FAILED")
    finally:
        smtp.stop()
