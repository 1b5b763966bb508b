"""Outgoing mail transport: .eml files in the outbox folder, or SMTP when configured.

Blocking on purpose (smtplib, file writes): callers run it in a worker thread. It lives in core because
auth's password-reset mail and the notifications domain both send through it; rendering, delivery records
and retries belong to `invoiceflow.notifications`.

`INVOICEFLOW_SMTP_URL`: `smtp://user:pass@host:587` speaks STARTTLS, `smtps://user:pass@host:465` implicit
TLS, and `smtp://host:25?starttls=false` plain text (a relay on the same host or a test server).
`?timeout=SECONDS` changes the 30-second socket timeout.
"""

from __future__ import annotations

import functools
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

SMTP_TIMEOUT_SECONDS = 30.0
_FALSE = {"0", "false", "no", "off"}


def build_message(*, sender: str, to: str, subject: str, text: str) -> EmailMessage:
    """A plain-text message with a fresh Message-ID (auth's password reset)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="invoiceflow.local")
    msg.set_content(text)
    return msg


class SmtpUrlError(ValueError):
    """INVOICEFLOW_SMTP_URL cannot be used (unknown scheme, no host, a bad option)."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None
    timeout: float

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise SmtpUrlError(f"SMTP URL scheme must be smtp or smtps, not {parts.scheme!r}")
        if not parts.hostname:
            raise SmtpUrlError("SMTP URL has no host")
        options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        implicit_tls = parts.scheme == "smtps"
        try:
            timeout = float(options.get("timeout", SMTP_TIMEOUT_SECONDS))
            port = parts.port or (465 if implicit_tls else 587)
        except ValueError as exc:
            raise SmtpUrlError(f"SMTP URL: {exc}") from None
        if not timeout > 0:
            raise SmtpUrlError("SMTP URL: timeout must be positive")
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=implicit_tls,
            # With implicit TLS the connection is encrypted from the start: no STARTTLS on top.
            starttls=not implicit_tls and options.get("starttls", "true").lower() not in _FALSE,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            timeout=timeout,
        )

    @property
    def label(self) -> str:
        """Where mail goes, without the credentials: for logs and delivery records."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{self.host}:{self.port}"


def _envelope(msg: EmailMessage) -> tuple[str, list[str]]:
    sender = parseaddr(str(msg.get("Sender") or msg.get("From") or ""))[1]
    # No Bcc: it would have to be stripped from the headers, and nothing here sends blind copies.
    headers = [str(value) for name in ("To", "Cc") for value in msg.get_all(name, [])]
    recipients = [address for _, address in getaddresses(headers) if address]
    if not sender or not recipients:
        raise ValueError("a message needs a From and at least one recipient")
    return sender, recipients


def tls_context() -> ssl.SSLContext:
    """The verifying client context. Loading the CA certificates costs ~10 ms, so it is built once per trust
    store (`SSL_CERT_FILE` / `SSL_CERT_DIR` as they are now); an SSLContext is safe to share between threads."""
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context(_cert_file: str | None, _cert_dir: str | None) -> ssl.SSLContext:
    return ssl.create_default_context()


def send_smtp(msg: EmailMessage, config: SmtpConfig) -> str:
    """Hand `msg` to the SMTP server; returns the server's reply to the message data ("250 2.0.0 Ok: queued as …").

    Every recipient must be accepted: a partial refusal raises before any data is sent, so a retry can
    never reach the accepted half twice.
    """
    sender, recipients = _envelope(msg)
    client: smtplib.SMTP
    if config.implicit_tls:
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=tls_context())
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    with client:
        client.ehlo()
        if config.starttls:
            client.starttls(context=tls_context())
            client.ehlo()
        if config.username:
            client.login(config.username, config.password or "")
        code, reply = client.mail(sender)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        refused = {}
        for address in recipients:
            code, reply = client.rcpt(address)
            if code not in (250, 251):
                refused[address] = (code, reply)
        if refused:
            client.rset()
            raise smtplib.SMTPRecipientsRefused(refused)
        code, reply = client.data(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
    return f"{code} {reply.decode('utf-8', 'replace')}".strip()


def outbox_filename(message_id: str) -> str:
    """The .eml name for a Message-ID: the same message always lands in the same file."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip().strip("<>")).strip("._") or "message"
    return f"{stem[:200]}.eml"


def write_outbox(msg: EmailMessage, outbox_dir: Path) -> Path:
    """Write `msg` as an .eml file named after its Message-ID, atomically (a reader never sees half a file).

    Writing the same message again replaces the file: a retried send leaves one file, not two.
    """
    message_id = str(msg.get("Message-ID") or "")
    if not message_id:
        raise ValueError("an outbox message needs a Message-ID")
    outbox_dir.mkdir(parents=True, exist_ok=True)
    path = outbox_dir / outbox_filename(message_id)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(bytes(msg))
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def deliver(msg: EmailMessage, *, smtp_url: str | None, outbox_dir: Path) -> str:
    """Deliver synchronously; returns the outbox file's path or the SMTP server's reply. Run in a thread."""
    if not smtp_url:
        return str(write_outbox(msg, outbox_dir))
    return send_smtp(msg, SmtpConfig.from_url(smtp_url))
