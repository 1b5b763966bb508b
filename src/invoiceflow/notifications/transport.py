"""Where notifications go: SMTP or the outbox folder for email, an incoming webhook for Slack.

Each transport returns the provider's answer as text (the SMTP server's reply, the .eml file's path, Slack's
status and body), which the delivery record keeps. Every call is bounded by a timeout; errors propagate
unchanged so the caller can record them and retry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from invoiceflow.core.mailer import SmtpConfig, send_smtp, write_outbox
from invoiceflow.core.settings import Settings

SLACK_TIMEOUT_SECONDS = 10.0
_EXCERPT = 300


class EmailTransport(Protocol):
    @property
    def label(self) -> str:
        """Where mail goes, without credentials."""
        ...

    async def send(self, msg: EmailMessage) -> str: ...


@dataclass(frozen=True, slots=True)
class SmtpTransport:
    config: SmtpConfig

    @property
    def label(self) -> str:
        return self.config.label

    async def send(self, msg: EmailMessage) -> str:
        # smtplib blocks; its socket timeout bounds every command, and the thread keeps the event loop free.
        return await asyncio.to_thread(send_smtp, msg, self.config)


@dataclass(frozen=True, slots=True)
class OutboxTransport:
    """Embedded mode: one .eml file per Message-ID, so a retry replaces the file rather than adding one."""

    folder: Path

    @property
    def label(self) -> str:
        return f"outbox:{self.folder}"

    async def send(self, msg: EmailMessage) -> str:
        return str(await asyncio.to_thread(write_outbox, msg, self.folder))


def email_transport(settings: Settings) -> EmailTransport:
    if settings.smtp_url:
        return SmtpTransport(SmtpConfig.from_url(settings.smtp_url))
    return OutboxTransport(settings.outbox_dir)


class SlackWebhookError(Exception):
    """Slack answered something other than 2xx; the message names the status and the start of the body."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"Slack webhook answered {status_code}: {body[:_EXCERPT]}")
        self.status_code = status_code
        self.body = body


@dataclass(frozen=True, slots=True)
class SlackWebhook:
    """A Slack incoming webhook. The URL carries its secret: only `label` (the host) is ever recorded."""

    url: str
    timeout: float = SLACK_TIMEOUT_SECONDS

    @property
    def label(self) -> str:
        parts = urlsplit(self.url)
        return f"slack:{parts.hostname or '?'}"

    async def post(self, payload: dict[str, Any]) -> str:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            response = await client.post(self.url, json=payload)
        body = response.text
        if not response.is_success:
            raise SlackWebhookError(response.status_code, body)
        return f"{response.status_code} {body[:_EXCERPT]}".strip()


def slack_webhook(settings: Settings) -> SlackWebhook | None:
    if settings.slack_webhook_url is None:
        return None
    url = settings.slack_webhook_url.get_secret_value().strip()
    return SlackWebhook(url) if url else None


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as its API asks (&, <, >), so a value cannot form a link
    or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
