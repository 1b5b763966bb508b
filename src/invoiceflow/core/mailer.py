"""Outgoing mail for the foundation: .eml files in the outbox folder, or SMTP when configured.

The automation issue moves delivery onto durable workflows; this module stays the transport.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit


def build_message(*, sender: str, to: str, subject: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="invoiceflow.local")
    msg.set_content(text)
    return msg


def deliver(msg: EmailMessage, *, smtp_url: str | None, outbox_dir: Path) -> str:
    """Deliver synchronously; returns where it went (file path or SMTP host). Run in a thread."""
    if not smtp_url:
        outbox_dir.mkdir(parents=True, exist_ok=True)
        path = outbox_dir / f"{uuid.uuid4().hex}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(msg))
        tmp.replace(path)
        return str(path)
    parts = urlsplit(smtp_url)
    host = parts.hostname or "localhost"
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            host, parts.port or 465, context=ssl.create_default_context(), timeout=30
        )
    else:
        client = smtplib.SMTP(host, parts.port or 587, timeout=30)
    with client:
        if parts.scheme == "smtp" and "starttls=false" not in (parts.query or ""):
            client.starttls(context=ssl.create_default_context())
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(msg)
    return host
