"""Invoice emails through a real SMTP server on loopback (aiosmtpd), with their delivery records, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from datetime import date, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import Engine, update

from invoiceflow.clients.models import Client
from invoiceflow.core.db import Database, utcnow
from invoiceflow.core.mailer import SmtpConfig, outbox_filename
from invoiceflow.documents.service import DocumentStore
from invoiceflow.notifications.models import NotificationDelivery
from invoiceflow.notifications.service import (
    DedupeKeyReused,
    DeliveryInProgress,
    DeliveryResult,
    InvoiceNotIssued,
    Notifier,
    RecipientMissing,
    invoice_issued_email,
    notifier_for,
    password_reset_email,
    payment_reminder_email,
    send_email,
    status_changed_email,
)
from invoiceflow.notifications.transport import OutboxTransport, SmtpTransport
from tests.conftest import make_settings
from tests.factories import count_rows, create_client, create_invoice, event_rows, register
from tests.notifications.conftest import (
    SENDER,
    IssuedInvoice,
    SmtpServer,
    delivery_rows,
    issue_invoice,
    self_signed_cert,
    server_tls_context,
)

pytestmark = pytest.mark.anyio


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(data)).pages)


async def test_the_invoice_email_arrives_with_its_pdf_and_the_delivery_says_sent(
    notifier: Notifier, store: DocumentStore, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    result = await invoice_issued_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
    )

    assert len(smtp.messages) == 1
    received = smtp.messages[0]
    assert received.rcpt_tos == [issued.client_email]
    assert received.mail_from == "billing@acme.example"
    msg = received.message
    assert msg["To"] == issued.client_email
    assert msg["From"] == SENDER
    assert msg["Subject"] == f"Invoice {issued.number} from Acme BV"
    assert msg["Message-ID"] == result.message_id
    assert msg["Message-ID"].endswith("@acme.example>")
    assert msg.get_content_type() == "multipart/mixed"

    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    assert html is not None
    assert issued.number in text.get_content()
    # The client's language is German: the facts carry the PDF's German labels and German number format.
    assert "Fällig am" in text.get_content()
    assert "559,74\xa0€" in text.get_content()  # 375.00 + 21 % VAT, 99.99 + 6 % VAT
    assert '<html lang="de">' in html.get_content()

    attachments = list(msg.iter_attachments())
    assert len(attachments) == 1
    pdf = attachments[0]
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == f"{issued.number}.pdf"
    data = pdf.get_content()
    assert data.startswith(b"%PDF-")
    assert issued.number in pdf_text(data)

    assert result.status == "sent"
    assert result.attempts == 1
    assert result.delivered_now is True
    assert result.recipient == issued.client_email
    assert result.provider_response == "250 2.0.0 Ok: queued as Q1"
    [row] = delivery_rows(db, issued.organization_id)
    assert (row.channel, row.purpose, row.status, row.attempts) == ("email", "invoice_issued", "sent", 1)
    assert (row.resource_type, row.resource_id) == ("invoice", str(issued.invoice_id))
    assert row.dedupe_key == f"invoice_issued:{issued.invoice_id}"
    assert row.sent_at is not None
    assert row.last_error is None
    [event] = event_rows(db, type="EmailSent", resource_id=str(issued.invoice_id))
    assert event.payload["message_id"] == result.message_id
    assert event.payload["purpose"] == "invoice_issued"


async def test_sending_again_with_the_same_key_sends_nothing_and_returns_the_same_delivery(
    notifier: Notifier, store: DocumentStore, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    first = await invoice_issued_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
    )
    again = await invoice_issued_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
    )
    # Straight through send_email too (no pre-check): the claim itself refuses to send twice.
    direct = await send_email(
        notifier,
        organization_id=issued.organization_id,
        purpose="invoice_issued",
        dedupe_key=f"invoice_issued:{issued.invoice_id}",
        to=issued.client_email,
        subject="ignored",
        template="password_reset",
        context={},
    )

    assert len(smtp.messages) == 1
    for result in (again, direct):
        assert result.id == first.id
        assert result.message_id == first.message_id
        assert (result.status, result.attempts, result.delivered_now) == ("sent", 1, False)
    assert len(delivery_rows(db, issued.organization_id)) == 1
    assert len(event_rows(db, type="EmailSent")) == 1


async def test_a_server_that_is_down_is_recorded_as_failed_and_the_retry_sends_it(
    database: Database, store: DocumentStore, smtp_down: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    notifier = Notifier(db=database, email=SmtpTransport(SmtpConfig.from_url(smtp_down.url())), sender=SENDER)

    with pytest.raises(ConnectionRefusedError):
        await invoice_issued_email(
            notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
        )
    [failed] = delivery_rows(db, issued.organization_id)
    assert (failed.status, failed.attempts, failed.sent_at) == ("failed", 1, None)
    assert failed.last_error is not None
    assert failed.last_error.startswith("ConnectionRefusedError")

    smtp_down.start()
    result = await invoice_issued_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
    )

    assert (result.status, result.attempts, result.delivered_now) == ("sent", 2, True)
    assert result.id == failed.id
    assert result.last_error is None
    [received] = smtp_down.messages
    assert received.message["Message-ID"] == failed.message_id
    assert received.rcpt_tos == [issued.client_email]


async def test_a_refused_recipient_is_a_failure_with_the_servers_answer(
    notifier: Notifier, store: DocumentStore, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    smtp.handler.refuse.add(issued.client_email)

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        await invoice_issued_email(
            notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
        )

    assert smtp.messages == []
    [row] = delivery_rows(db, issued.organization_id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error is not None
    assert "550" in row.last_error
    assert "no such mailbox" in row.last_error


async def test_a_concurrent_send_of_the_same_notification_waits_for_the_first(
    notifier: Notifier, store: DocumentStore, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    smtp.handler.delay = 0.5

    outcomes = await asyncio.gather(
        invoice_issued_email(notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id),
        invoice_issued_email(notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id),
        return_exceptions=True,
    )

    sent = [o for o in outcomes if isinstance(o, DeliveryResult)]
    busy = [o for o in outcomes if isinstance(o, DeliveryInProgress)]
    assert len(sent) == 1, outcomes
    assert len(busy) == 1, outcomes
    assert busy[0].delivery_id == sent[0].id
    assert len(smtp.messages) == 1
    # The retry of the refused call, once the first finished, finds the delivery sent.
    retried = await invoice_issued_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
    )
    assert (retried.id, retried.delivered_now, retried.attempts) == (sent[0].id, False, 1)
    assert len(smtp.messages) == 1


async def test_a_send_that_died_half_way_is_taken_over_after_the_lease(
    database: Database, store: DocumentStore, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    notifier = Notifier(db=database, email=SmtpTransport(SmtpConfig.from_url(smtp.url())), sender=SENDER)
    first = await invoice_issued_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
    )
    # The crash window: the server accepted the message, the record never said so.
    with db.begin() as conn:
        conn.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == first.id)
            .values(status="pending", sent_at=None, updated_at=utcnow() - timedelta(minutes=1))
        )

    with pytest.raises(DeliveryInProgress):
        await invoice_issued_email(
            notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
        )
    short_lease = Notifier(db=database, email=notifier.email, sender=SENDER, in_flight_lease=timedelta(seconds=30))
    again = await invoice_issued_email(
        short_lease, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
    )

    # The documented at-least-once window: one resend, the same message.
    assert (again.status, again.attempts) == ("sent", 2)
    assert [m.message["Message-ID"] for m in smtp.messages] == [first.message_id, first.message_id]
    assert smtp.messages[0].message["Date"] == smtp.messages[1].message["Date"]


async def test_outbox_mode_writes_one_eml_per_message_id(
    database: Database, store: DocumentStore, client: TestClient, tmp_path: Path, db: Engine
) -> None:
    outbox = tmp_path / "outbox"
    notifier = Notifier(db=database, email=OutboxTransport(outbox), sender=SENDER)
    one = issue_invoice(client)
    two = issue_invoice(client)

    first = await invoice_issued_email(notifier, store, organization_id=one.organization_id, invoice_id=one.invoice_id)
    await invoice_issued_email(notifier, store, organization_id=one.organization_id, invoice_id=one.invoice_id)
    second = await invoice_issued_email(notifier, store, organization_id=two.organization_id, invoice_id=two.invoice_id)
    # A crash after the file was written: the retry rewrites the same file.
    with db.begin() as conn:
        conn.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == first.id)
            .values(status="failed", sent_at=None)
        )
    retried = await invoice_issued_email(
        notifier, store, organization_id=one.organization_id, invoice_id=one.invoice_id
    )

    assert first.message_id is not None
    assert second.message_id is not None
    first_file = outbox / outbox_filename(first.message_id)
    assert sorted(outbox.iterdir()) == sorted([first_file, outbox / outbox_filename(second.message_id)])
    assert retried.provider_response == str(first_file)
    assert retried.attempts == 2
    msg = message_from_bytes(first_file.read_bytes(), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Message-ID"] == first.message_id
    assert msg["Subject"] == f"Invoice {one.number} from Acme BV"
    assert msg["To"] == one.client_email
    [pdf] = list(msg.iter_attachments())
    assert one.number in pdf_text(pdf.get_content())


async def test_the_settings_choose_smtp_with_starttls_and_login(
    database: Database,
    store: DocumentStore,
    smtp_down: SmtpServer,
    issued: IssuedInvoice,
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`smtp://user:pass@host:port` (the default STARTTLS form), trusting the test server's certificate."""
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    smtp_down.start(
        tls_context=server_tls_context(cert, key),
        require_starttls=True,
        auth_required=True,
        authenticator=smtp_down.handler.authenticate,
    )
    settings = make_settings(
        database_url,
        tmp_path / "data",
        smtp_url=f"smtp://mailer:s3cret%3A%40%2F@127.0.0.1:{smtp_down.port}?timeout=5",
        smtp_from=SENDER,
    )
    notifier = notifier_for(settings, database)
    assert isinstance(notifier.email, SmtpTransport)

    result = await invoice_issued_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
    )

    assert result.status == "sent"
    assert smtp_down.handler.logins == [("mailer", "s3cret:@/")]
    [received] = smtp_down.messages
    assert received.rcpt_tos == [issued.client_email]


async def test_a_client_without_email_cannot_be_sent_to_and_nothing_is_recorded(
    notifier: Notifier, store: DocumentStore, smtp: SmtpServer, client: TestClient, db: Engine
) -> None:
    issued = issue_invoice(client)
    # The API requires a client email; an imported invoice's buyer may have none.
    with db.begin() as conn:
        conn.execute(update(Client).where(Client.id == issued.client_id).values(email=None))

    with pytest.raises(RecipientMissing):
        await invoice_issued_email(
            notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id
        )

    assert smtp.messages == []
    assert count_rows(db, "notification_deliveries") == 0
    # An address given by the caller is used instead.
    result = await invoice_issued_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id, to="ap@buyer.example"
    )
    assert result.recipient == "ap@buyer.example"
    assert smtp.messages[0].rcpt_tos == ["ap@buyer.example"]


async def test_another_organisations_invoice_is_not_found(
    notifier: Notifier, store: DocumentStore, smtp: SmtpServer, client: TestClient
) -> None:
    mine = issue_invoice(client)
    theirs = issue_invoice(client)
    from invoiceflow.core.errors import NotFound

    with pytest.raises(NotFound):
        await invoice_issued_email(notifier, store, organization_id=mine.organization_id, invoice_id=theirs.invoice_id)
    assert smtp.messages == []


async def test_a_dedupe_key_names_one_kind_of_notification(
    notifier: Notifier, smtp: SmtpServer, issued: IssuedInvoice
) -> None:
    context: dict[str, Any] = {"lang": "en", "user_name": "", "token": "t", "reset_link": "http://x", "ttl_hours": 1}
    await send_email(
        notifier,
        organization_id=issued.organization_id,
        purpose="password_reset",
        dedupe_key="shared-key",
        to="ada@example.com",
        subject="Reset",
        template="password_reset",
        context=context,
    )
    with pytest.raises(DedupeKeyReused):
        await send_email(
            notifier,
            organization_id=issued.organization_id,
            purpose="document_ready",
            dedupe_key="shared-key",
            to="ada@example.com",
            subject="Ready",
            template="password_reset",
            context=context,
        )
    assert len(smtp.messages) == 1


async def test_reminders_and_status_notices_are_one_per_stage_and_change(
    notifier: Notifier, store: DocumentStore, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    due = date.today() + timedelta(days=30)
    for _ in range(2):
        await payment_reminder_email(
            notifier,
            store,
            organization_id=issued.organization_id,
            invoice_id=issued.invoice_id,
            stage=7,
            on=due + timedelta(days=7),
        )
    await payment_reminder_email(
        notifier,
        store,
        organization_id=issued.organization_id,
        invoice_id=issued.invoice_id,
        stage=14,
        on=due + timedelta(days=14),
    )
    change = uuid.uuid4()
    for _ in range(2):
        await status_changed_email(
            notifier,
            store,
            organization_id=issued.organization_id,
            invoice_id=issued.invoice_id,
            old_status="sent",
            new_status="paid",
            change_id=change,
        )

    subjects = [m.message["Subject"] for m in smtp.messages]
    assert subjects == [
        f"Payment reminder: invoice {issued.number} from Acme BV",
        f"Payment reminder: invoice {issued.number} from Acme BV",
        f"Invoice {issued.number} is now paid",
    ]
    week = smtp.messages[0].message.get_body(("plain",))
    assert week is not None
    assert "7 days ago" in week.get_content()
    assert [a.get_filename() for a in smtp.messages[0].message.iter_attachments()] == [f"{issued.number}.pdf"]
    paid = smtp.messages[2].message.get_body(("plain",))
    assert paid is not None
    assert "changed from issued to paid" in paid.get_content()
    assert list(smtp.messages[2].message.iter_attachments()) == []
    rows = delivery_rows(db, issued.organization_id)
    assert sorted(r.dedupe_key for r in rows) == sorted(
        [
            f"payment_reminder:{issued.invoice_id}:7",
            f"payment_reminder:{issued.invoice_id}:14",
            f"status_changed:{issued.invoice_id}:{change}",
        ]
    )
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}


async def test_a_draft_is_not_emailed_and_a_settled_invoice_gets_no_reminder(
    notifier: Notifier, store: DocumentStore, smtp: SmtpServer, client: TestClient, db: Engine
) -> None:
    account = register(client)
    buyer = create_client(client, account)
    draft = create_invoice(client, account, buyer["id"])
    org = uuid.UUID(account.organization_id)

    with pytest.raises(InvoiceNotIssued):
        await invoice_issued_email(notifier, store, organization_id=org, invoice_id=uuid.UUID(draft["id"]))

    issued = issue_invoice(client)
    r = client.patch(f"/api/v1/invoices/{issued.invoice_id}/status", json={"status": "paid"}, headers=issued.headers)
    assert r.status_code == 200, r.text
    reminded = await payment_reminder_email(
        notifier, store, organization_id=issued.organization_id, invoice_id=issued.invoice_id, stage=7, on=date.today()
    )

    assert reminded is None
    assert smtp.messages == []
    assert count_rows(db, "notification_deliveries") == 0


async def test_a_plain_session_factory_will_do(
    database: Database, smtp: SmtpServer, issued: IssuedInvoice, db: Engine
) -> None:
    """Callers that hold only a sessionmaker (a worker's own engine) pass it instead of a Database."""
    notifier = Notifier(db=database.write_sessions, email=SmtpTransport(SmtpConfig.from_url(smtp.url())), sender=SENDER)
    token_id = uuid.uuid4()
    user_id = uuid.uuid4()
    for _ in range(2):
        result = await password_reset_email(
            notifier,
            organization_id=issued.organization_id,
            user_id=user_id,
            to="ada@example.com",
            token_id=token_id,
            token="ifp_secret-token",
            reset_link="https://app.example/reset-password?token=ifp_secret-token",
            ttl_hours=1,
            user_name="Ada",
        )
        assert (result.status, result.attempts) == ("sent", 1)

    [received] = smtp.messages
    assert received.message["Subject"] == "Reset your invoiceflow password"
    body = received.message.get_body(("plain",))
    assert body is not None
    assert "https://app.example/reset-password?token=ifp_secret-token" in body.get_content()
    [row] = delivery_rows(db, issued.organization_id)
    assert (row.purpose, row.resource_type, row.resource_id) == ("password_reset", "user", str(user_id))
    # The dedupe key names the token row, never the secret itself.
    assert row.dedupe_key == f"password_reset:{token_id}"
