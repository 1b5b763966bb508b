"""Sending notifications with a delivery record, so that a retried workflow step sends nothing twice.

Durable workflow steps are at-least-once: a step may run again after a crash or an error. Each send
therefore goes through one delivery row keyed by (organisation, dedupe key):

1. claim, in a short transaction of its own: insert the row (status `pending`, attempts 1), or load it.
   A row already `sent` ends here and is returned as it is: the retried step is harmless. A `pending`
   row updated less than `Notifier.in_flight_lease` ago belongs to a send still under way (a concurrent
   call with the same key): `DeliveryInProgress` is raised, a retryable error. Otherwise (`failed`, or a
   `pending` row left behind by a crash) attempts + 1 and the send goes ahead. Two first claims racing
   meet at the unique constraint; the loser re-reads the winner's row.
2. render and hand over, outside any transaction (SMTP, the outbox folder, Slack).
3. record the outcome, in a second short transaction: `sent` with the provider's answer (and an
   `EmailSent` event), or `failed` with the error, after which the error is raised again so the caller's
   retry policy decides what happens next.

The remaining at-least-once window: a crash (or a lost database) after the SMTP server accepted the
message but before step 3 committed leaves the row `pending`; the next attempt after the lease sends the
message once more. It is the same message with the same Message-ID (derived from the dedupe key and kept
in the row), and mail clients show a duplicate Message-ID once. The outbox has no such window: the file
is named after the Message-ID and is simply replaced. A Slack message in that window is posted twice.

A cancelled send (task cancellation) records nothing: its row stays `pending` until the lease passes.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, get_args

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from invoiceflow.core.context import Actor
from invoiceflow.core.db import Database, new_id, utcnow
from invoiceflow.core.errors import AppError
from invoiceflow.core.records import record_event
from invoiceflow.core.settings import Settings
from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.documents.service import DocumentStore, ensure_document, load_document
from invoiceflow.notifications.models import NotificationDelivery
from invoiceflow.notifications.render import (
    STATUS_WORDS,
    Attachment,
    EmailTemplate,
    build_email,
    invoice_context,
    labels_language,
    message_id_for,
    render_email,
)
from invoiceflow.notifications.transport import (
    EmailTransport,
    SlackWebhook,
    email_transport,
    slack_escape,
    slack_webhook,
)

log = logging.getLogger("invoiceflow.notifications")

Channel = Literal["email", "slack"]
Purpose = Literal[
    "invoice_issued",
    "payment_reminder",
    "status_changed",
    "password_reset",
    "document_ready",
    "job_failed",
    "job_completed",
    "workflow_failed",
]
PURPOSES: Final[tuple[str, ...]] = get_args(Purpose)
DeliveryStatus = Literal["pending", "sent", "failed"]
SessionSource = Database | async_sessionmaker[AsyncSession]

DEFAULT_IN_FLIGHT_LEASE: Final = timedelta(minutes=5)
_OUTSTANDING = frozenset({"sent", "overdue"})
_TEXT_LIMIT = 2000
_KEY_LIMIT = 255


class DeliveryInProgress(Exception):
    """Another call is sending this notification right now (its claim is younger than the lease): retry later."""

    def __init__(self, delivery_id: uuid.UUID, dedupe_key: str) -> None:
        super().__init__(f"notification {dedupe_key!r} is being sent by another call (delivery {delivery_id})")
        self.delivery_id = delivery_id
        self.dedupe_key = dedupe_key


class DedupeKeyReused(ValueError):
    """A dedupe key already names a notification of another channel or purpose: a bug in the caller."""


class InvoiceNotIssued(AppError):
    """A draft has no number and is not a legal document yet: it is not emailed to the client."""

    status_code = 409
    code = "INVOICE_NOT_ISSUED"


class RecipientMissing(AppError):
    """The client has no email address to send the invoice to. Not retryable: the data must change first."""

    status_code = 422
    code = "CLIENT_EMAIL_MISSING"


@dataclass(frozen=True, slots=True)
class Notifier:
    """What sending needs from the process; the app, the worker and tests each build one (`notifier_for`)."""

    db: SessionSource
    email: EmailTransport
    sender: str
    slack: SlackWebhook | None = None
    # Longer than one send can take (SMTP commands time out after 30 s each): a younger pending claim is
    # taken to be a send still under way, an older one a send that died.
    in_flight_lease: timedelta = DEFAULT_IN_FLIGHT_LEASE


def notifier_for(settings: Settings, db: SessionSource) -> Notifier:
    return Notifier(db=db, email=email_transport(settings), sender=settings.smtp_from, slack=slack_webhook(settings))


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """A delivery row as callers see it; `delivered_now` tells whether this call did the sending."""

    id: uuid.UUID
    organization_id: uuid.UUID
    channel: str
    purpose: str
    resource_type: str | None
    resource_id: str | None
    recipient: str
    subject: str | None
    message_id: str | None
    dedupe_key: str
    status: str
    attempts: int
    last_error: str | None
    provider_response: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    delivered_now: bool = False


def _result(row: NotificationDelivery, *, delivered_now: bool = False) -> DeliveryResult:
    return DeliveryResult(
        id=row.id,
        organization_id=row.organization_id,
        channel=row.channel,
        purpose=row.purpose,
        resource_type=row.resource_type,
        resource_id=row.resource_id,
        recipient=row.recipient,
        subject=row.subject,
        message_id=row.message_id,
        dedupe_key=row.dedupe_key,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        provider_response=row.provider_response,
        created_at=row.created_at,
        updated_at=row.updated_at,
        sent_at=row.sent_at,
        delivered_now=delivered_now,
    )


def _clip(text: str, limit: int = _TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded_key(prefix: str, value: str) -> str:
    """`prefix:value`, or `prefix:sha256(value)` when that would not fit the column."""
    key = f"{prefix}:{value}"
    return key if len(key) <= _KEY_LIMIT else f"{prefix}:sha256:{hashlib.sha256(value.encode()).hexdigest()}"


def _describe(exc: BaseException) -> str:
    return _clip(f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------------- sessions


@asynccontextmanager
async def _write_session(source: SessionSource) -> AsyncIterator[AsyncSession]:
    """A short write transaction; on SQLite the process's write lock is held for its lifetime only."""
    if isinstance(source, Database):
        async with source.locked_write_session() as session:
            yield session
        return
    async with source() as session:
        yield session


@asynccontextmanager
async def _read_session(source: SessionSource) -> AsyncIterator[AsyncSession]:
    factory = source.read_sessions if isinstance(source, Database) else source
    async with factory() as session:
        try:
            yield session
        finally:
            await session.rollback()


def _by_key(organization_id: uuid.UUID, dedupe_key: str) -> Any:
    return select(NotificationDelivery).where(
        NotificationDelivery.organization_id == organization_id, NotificationDelivery.dedupe_key == dedupe_key
    )


async def find_delivery(source: SessionSource, organization_id: uuid.UUID, dedupe_key: str) -> DeliveryResult | None:
    """The delivery a dedupe key names, or None when nothing was claimed under it yet."""
    async with _read_session(source) as session:
        row = (await session.execute(_by_key(organization_id, dedupe_key))).scalar_one_or_none()
        return None if row is None else _result(row)


# --------------------------------------------------------------------------------------------- claims


@dataclass(frozen=True, slots=True)
class _Request:
    organization_id: uuid.UUID
    channel: Channel
    purpose: Purpose
    dedupe_key: str
    recipient: str
    subject: str | None
    message_id: str | None
    resource_type: str | None
    resource_id: str | None


@dataclass(frozen=True, slots=True)
class _Claim:
    row: DeliveryResult
    send: bool


def _check(request: _Request) -> None:
    if request.purpose not in PURPOSES:
        raise ValueError(f"unknown notification purpose {request.purpose!r}")
    if not request.dedupe_key or len(request.dedupe_key) > _KEY_LIMIT:
        raise ValueError(f"a dedupe key has 1 to {_KEY_LIMIT} characters")
    if request.resource_type is not None and len(request.resource_type) > 32:
        raise ValueError("resource_type has at most 32 characters")
    if request.resource_id is not None and len(request.resource_id) > 64:
        raise ValueError("resource_id has at most 64 characters")


async def _claim(notifier: Notifier, request: _Request) -> _Claim:
    _check(request)
    for _ in range(2):
        async with _write_session(notifier.db) as session:
            stmt = _by_key(request.organization_id, request.dedupe_key).with_for_update()
            row: NotificationDelivery | None = (await session.execute(stmt)).scalar_one_or_none()
            now = utcnow()
            if row is None:
                row = NotificationDelivery(
                    id=new_id(),
                    organization_id=request.organization_id,
                    channel=request.channel,
                    purpose=request.purpose,
                    resource_type=request.resource_type,
                    resource_id=request.resource_id,
                    recipient=_clip(request.recipient, 500),
                    subject=None if request.subject is None else _clip(request.subject, 500),
                    message_id=request.message_id,
                    dedupe_key=request.dedupe_key,
                    status="pending",
                    attempts=1,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                claimed = _result(row)
                try:
                    await session.commit()
                except IntegrityError:
                    # Another call claimed the key between our read and our insert: read its row.
                    await session.rollback()
                    continue
                return _Claim(claimed, send=True)
            if row.channel != request.channel or row.purpose != request.purpose:
                raise DedupeKeyReused(
                    f"dedupe key {request.dedupe_key!r} already names a {row.channel} {row.purpose} notification"
                )
            if row.status == "sent":
                found = _result(row)
                await session.rollback()
                return _Claim(found, send=False)
            if row.status == "pending" and row.updated_at > now - notifier.in_flight_lease:
                busy = DeliveryInProgress(row.id, row.dedupe_key)
                await session.rollback()  # expires `row`: read from it before
                raise busy
            row.status = "pending"
            row.attempts += 1
            row.updated_at = now
            # A retry sends to today's address (a corrected client email) under the first Message-ID.
            row.recipient = _clip(request.recipient, 500)
            row.subject = None if request.subject is None else _clip(request.subject, 500)
            claimed = _result(row)
            await session.commit()
            return _Claim(claimed, send=True)
    # The insert failed and no row appeared: not a race but another constraint (no such organisation).
    raise LookupError(
        f"cannot record notification {request.dedupe_key!r}: is organisation {request.organization_id} real?"
    )


async def _mark_sent(notifier: Notifier, claim: DeliveryResult, response: str) -> DeliveryResult:
    async with _write_session(notifier.db) as session:
        row = await session.get(NotificationDelivery, claim.id, with_for_update=True)
        if row is None:  # the organisation was deleted meanwhile
            raise LookupError(f"delivery {claim.id} vanished")
        now = utcnow()
        row.status = "sent"
        row.provider_response = _clip(response)
        row.last_error = None
        row.sent_at = now
        row.updated_at = now
        if row.channel == "email":
            record_event(
                session,
                organization_id=row.organization_id,
                type="EmailSent",
                resource_type=row.resource_type or "notification",
                resource_id=row.resource_id or row.id,
                payload={
                    "delivery_id": str(row.id),
                    "purpose": row.purpose,
                    "recipient": row.recipient,
                    "subject": row.subject,
                    "message_id": row.message_id,
                    "attempts": row.attempts,
                },
            )
        sent = _result(row, delivered_now=True)
        await session.commit()
        return sent


async def _mark_failed(notifier: Notifier, claim: DeliveryResult, exc: Exception) -> None:
    """Record the failure; a failure to record it is logged, never raised over the error that caused it."""
    try:
        async with _write_session(notifier.db) as session:
            row = await session.get(NotificationDelivery, claim.id, with_for_update=True)
            if row is None:
                return
            row.status = "failed"
            row.last_error = _describe(exc)
            response = getattr(exc, "smtp_error", None) or getattr(exc, "body", None)
            if isinstance(response, bytes):
                response = response.decode("utf-8", "replace")
            if isinstance(response, str):
                row.provider_response = _clip(response)
            row.updated_at = utcnow()
            await session.commit()
    except Exception:
        log.exception("could not record the failure of notification %s", claim.dedupe_key)


# --------------------------------------------------------------------------------------------- sending


async def send_email(
    notifier: Notifier,
    *,
    organization_id: uuid.UUID,
    purpose: Purpose,
    dedupe_key: str,
    to: str,
    subject: str,
    template: EmailTemplate,
    context: Mapping[str, Any],
    attachments: Iterable[Attachment] = (),
    resource_type: str | None = None,
    resource_id: uuid.UUID | str | None = None,
) -> DeliveryResult:
    """Send one email at most once per (organisation, dedupe key); see the module docstring.

    Returns the delivery: `sent` (by this call when `delivered_now`, else by an earlier one). A failure is
    recorded (`failed`, attempts, last error) and raised again; `DeliveryInProgress` means another call holds
    the key right now. Rendering happens after the claim, so a broken template is recorded like any failure.
    """
    files = tuple(attachments)
    claim = await _claim(
        notifier,
        _Request(
            organization_id=organization_id,
            channel="email",
            purpose=purpose,
            dedupe_key=dedupe_key,
            recipient=to,
            subject=subject,
            message_id=message_id_for(organization_id, dedupe_key, notifier.sender),
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id),
        ),
    )
    if not claim.send:
        return claim.row
    try:
        msg = build_email(
            sender=notifier.sender,
            to=to,
            subject=subject,
            body=render_email(template, context),
            # The row's, not a fresh one: the first claim fixed them, and a retry must send the same message.
            message_id=claim.row.message_id or message_id_for(organization_id, dedupe_key, notifier.sender),
            sent_date=claim.row.created_at,
            attachments=files,
        )
        response = await notifier.email.send(msg)
    except Exception as exc:
        await _mark_failed(notifier, claim.row, exc)
        raise
    log.info("email %s sent to %s (%s)", dedupe_key, to, notifier.email.label)
    return await _mark_sent(notifier, claim.row, response)


async def send_slack(
    notifier: Notifier,
    *,
    organization_id: uuid.UUID,
    purpose: Purpose,
    dedupe_key: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    resource_type: str | None = None,
    resource_id: uuid.UUID | str | None = None,
) -> DeliveryResult | None:
    """Post one Slack message at most once per (organisation, dedupe key), like `send_email`.

    `text` is Slack mrkdwn: escape values with `transport.slack_escape`. Returns None, recording nothing,
    when no webhook is configured (INVOICEFLOW_SLACK_WEBHOOK_URL unset).
    """
    if notifier.slack is None:
        log.debug("no Slack webhook configured: %s not posted", dedupe_key)
        return None
    claim = await _claim(
        notifier,
        _Request(
            organization_id=organization_id,
            channel="slack",
            purpose=purpose,
            dedupe_key=dedupe_key,
            recipient=notifier.slack.label,
            subject=_clip(text.split("\n", 1)[0], 500),
            message_id=None,
            resource_type=resource_type,
            resource_id=None if resource_id is None else str(resource_id),
        ),
    )
    if not claim.send:
        return claim.row
    payload: dict[str, Any] = {"text": text}
    if blocks:
        payload["blocks"] = blocks
    try:
        response = await notifier.slack.post(payload)
    except Exception as exc:
        await _mark_failed(notifier, claim.row, exc)
        raise
    return await _mark_sent(notifier, claim.row, response)


# --------------------------------------------------------------------------------------------- use cases


def _system_actor(organization_id: uuid.UUID) -> Actor:
    # Workflow steps act for the organisation itself, not for a user: they read only its own invoices.
    return Actor(organization_id=organization_id, user_id=None, api_key_id=None, role="admin")


async def _invoice(store: DocumentStore, organization_id: uuid.UUID, invoice_id: uuid.UUID) -> InvoiceDocument:
    """The document model of one of the organisation's invoices (NotFound for anyone else's)."""
    async with _read_session(store.db) as session:
        return await load_document(session, _system_actor(organization_id), invoice_id)


async def _invoice_pdf(store: DocumentStore, organization_id: uuid.UUID, invoice_id: uuid.UUID) -> Attachment:
    """The invoice's stored PDF, rendered and stored first when there is none yet.

    The stored PDF of an issued invoice is the one first rendered for it (documents.service), so the email
    attaches exactly what the download link serves.
    """
    async with _read_session(store.db) as session:
        stored = await ensure_document(session, _system_actor(organization_id), invoice_id, "pdf", store)
    data = await store.storage.get(stored.storage_key)
    return Attachment(filename=stored.filename, content=data, content_type="application/pdf")


def _recipient(doc: InvoiceDocument, to: str | None) -> str:
    address = to or doc.buyer.email
    if not address:
        raise RecipientMissing(
            f"Client {doc.buyer.name!r} has no email address: add one to send invoice {doc.number}",
            details={"field": "email"},
        )
    return address


async def _already_sent(notifier: Notifier, organization_id: uuid.UUID, dedupe_key: str) -> DeliveryResult | None:
    # Saves rendering and reading the PDF on a retried step; send_email checks again under the claim.
    found = await find_delivery(notifier.db, organization_id, dedupe_key)
    return found if found is not None and found.status == "sent" else None


async def invoice_issued_email(
    notifier: Notifier,
    store: DocumentStore,
    *,
    organization_id: uuid.UUID,
    invoice_id: uuid.UUID,
    to: str | None = None,
    dedupe_key: str | None = None,
    doc: InvoiceDocument | None = None,
    pdf: Attachment | None = None,
) -> DeliveryResult:
    """Email an invoice (or credit note) to its client, its PDF attached.

    One delivery per invoice by default (`invoice_issued:{invoice_id}`); a deliberate re-send passes a
    key of its own. `to` overrides the client's address. Raises RecipientMissing when there is none.
    A caller that already holds the invoice's document model or its stored PDF (a workflow step) passes
    them in, saving their loading.
    """
    key = dedupe_key or f"invoice_issued:{invoice_id}"
    # The early check saves loading the invoice and its PDF; a caller that passes both has nothing to save,
    # and send_email's claim finds a sent delivery all the same.
    if (doc is None or pdf is None) and (done := await _already_sent(notifier, organization_id, key)) is not None:
        return done
    doc = doc or await _invoice(store, organization_id, invoice_id)
    if doc.status == "draft" or not doc.number:
        raise InvoiceNotIssued("Issue the invoice before emailing it", details={"status": doc.status})
    to = _recipient(doc, to)
    pdf = pdf or await _invoice_pdf(store, organization_id, invoice_id)
    word = "Credit note" if doc.kind == "credit_note" else "Invoice"
    return await send_email(
        notifier,
        organization_id=organization_id,
        purpose="invoice_issued",
        dedupe_key=key,
        to=to,
        subject=f"{word} {doc.number} from {doc.seller.name}",
        template="invoice_issued",
        context=invoice_context(doc),
        attachments=(pdf,),
        resource_type="invoice",
        resource_id=invoice_id,
    )


async def payment_reminder_email(
    notifier: Notifier,
    store: DocumentStore,
    *,
    organization_id: uuid.UUID,
    invoice_id: uuid.UUID,
    stage: int,
    on: date,
    to: str | None = None,
) -> DeliveryResult | None:
    """Remind the client of an unpaid invoice, its PDF attached.

    `stage` is the reminder policy's offset in days from the due date (-3, 0, 7, …): one reminder per
    invoice and stage (`payment_reminder:{invoice_id}:{stage}`). `on` is the day of the reminder run, from
    which the text counts the days overdue. Returns None, sending and recording nothing, when the invoice
    is no longer outstanding (paid, cancelled or settled since the run selected it).
    """
    key = f"payment_reminder:{invoice_id}:{stage}"
    if (done := await _already_sent(notifier, organization_id, key)) is not None:
        return done
    doc = await _invoice(store, organization_id, invoice_id)
    if doc.kind != "invoice" or doc.status not in _OUTSTANDING or doc.amount_due <= 0:
        log.info("invoice %s is %s: no payment reminder", invoice_id, doc.status)
        return None
    to = _recipient(doc, to)
    pdf = await _invoice_pdf(store, organization_id, invoice_id)
    days_overdue = (on - doc.due_date).days if doc.due_date else 0
    return await send_email(
        notifier,
        organization_id=organization_id,
        purpose="payment_reminder",
        dedupe_key=key,
        to=to,
        subject=f"Payment reminder: invoice {doc.number} from {doc.seller.name}",
        template="payment_reminder",
        context=invoice_context(doc) | {"days_overdue": days_overdue},
        attachments=(pdf,),
        resource_type="invoice",
        resource_id=invoice_id,
    )


async def status_changed_email(
    notifier: Notifier,
    store: DocumentStore,
    *,
    organization_id: uuid.UUID,
    invoice_id: uuid.UUID,
    old_status: str,
    new_status: str,
    change_id: uuid.UUID | str,
    to: str | None = None,
) -> DeliveryResult:
    """Tell the client an invoice changed status; one email per change (`change_id`: the event's id)."""
    key = f"status_changed:{invoice_id}:{change_id}"
    if (done := await _already_sent(notifier, organization_id, key)) is not None:
        return done
    doc = await _invoice(store, organization_id, invoice_id)
    word = "Credit note" if doc.kind == "credit_note" else "Invoice"
    new_word = STATUS_WORDS.get(new_status, new_status)
    return await send_email(
        notifier,
        organization_id=organization_id,
        purpose="status_changed",
        dedupe_key=key,
        to=_recipient(doc, to),
        subject=f"{word} {doc.number} is now {new_word}",
        template="status_changed",
        context=invoice_context(doc)
        | {
            "old_status": old_status,
            "new_status": new_status,
            "old_status_word": STATUS_WORDS.get(old_status, old_status),
            "new_status_word": new_word,
        },
        resource_type="invoice",
        resource_id=invoice_id,
    )


async def password_reset_email(
    notifier: Notifier,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    to: str,
    token_id: uuid.UUID | str,
    token: str,
    reset_link: str,
    ttl_hours: int,
    user_name: str | None = None,
) -> DeliveryResult:
    """The password-reset email; one per reset token (`token_id` is the token row's id, never the secret)."""
    return await send_email(
        notifier,
        organization_id=organization_id,
        purpose="password_reset",
        dedupe_key=f"password_reset:{token_id}",
        to=to,
        subject="Reset your invoiceflow password",
        template="password_reset",
        context={
            "lang": "en",
            "user_name": user_name or "",
            "token": token,
            "reset_link": reset_link,
            "ttl_hours": ttl_hours,
        },
        resource_type="user",
        resource_id=user_id,
    )


async def document_ready_email(
    notifier: Notifier,
    *,
    organization_id: uuid.UUID,
    to: str,
    document_id: uuid.UUID | str,
    filename: str,
    download_url: str,
    expires_at: datetime,
    recipient_name: str | None = None,
    organization_name: str | None = None,
    language: str = "en",
) -> DeliveryResult:
    """Tell a user a document they asked for (an export, a rendered upload) can be downloaded."""
    return await send_email(
        notifier,
        organization_id=organization_id,
        purpose="document_ready",
        dedupe_key=f"document_ready:{document_id}",
        to=to,
        subject=f"Your document {filename} is ready",
        template="document_ready",
        context={
            "lang": labels_language(language),
            "recipient_name": recipient_name or "",
            "organization_name": organization_name or "",
            "filename": filename,
            "download_url": download_url,
            "expires_at": expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        },
        resource_type="document",
        resource_id=document_id,
    )


async def job_failed_slack(
    notifier: Notifier,
    *,
    organization_id: uuid.UUID,
    job_id: uuid.UUID | str,
    job_type: str,
    error: str,
    details_url: str | None = None,
) -> DeliveryResult | None:
    """Post a job failure to Slack, once per job (`job_failed:{job_id}`)."""
    lines = [f":x: *{slack_escape(job_type)}* job `{job_id}` failed", f"> {slack_escape(_clip(error, 1500))}"]
    if details_url:
        lines.append(f"<{slack_escape(details_url)}|Open the job>")
    return await send_slack(
        notifier,
        organization_id=organization_id,
        purpose="job_failed",
        dedupe_key=f"job_failed:{job_id}",
        text="\n".join(lines),
        resource_type="job",
        resource_id=job_id,
    )


async def workflow_failed_slack(
    notifier: Notifier,
    *,
    organization_id: uuid.UUID,
    workflow_id: str,
    step: str,
    error: str,
    resource_type: str | None = None,
    resource_id: uuid.UUID | str | None = None,
) -> DeliveryResult | None:
    """Post a workflow failure to Slack, once per workflow (`workflow_failed:{workflow_id}`)."""
    subject = f" for {slack_escape(resource_type)} `{resource_id}`" if resource_type and resource_id else ""
    text = (
        f":warning: workflow `{slack_escape(workflow_id)}`{subject} failed at step *{slack_escape(step)}*\n"
        f"> {slack_escape(_clip(error, 1500))}"
    )
    return await send_slack(
        notifier,
        organization_id=organization_id,
        purpose="workflow_failed",
        dedupe_key=_bounded_key("workflow_failed", workflow_id),
        text=text,
        resource_type=resource_type,
        resource_id=resource_id,
    )
