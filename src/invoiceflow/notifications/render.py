"""Email rendering: Jinja2 templates to text and HTML, and the MIME message around them.

Pure functions, no I/O besides reading the templates. A message is a function of its inputs and of the
delivery row (Message-ID, Date), so a retried send produces the same message, byte for byte.

Language: the prose of the emails is English. The facts of an invoice (labels such as "Rechnung" or
"Fällig am", amounts and dates) follow the client's language exactly as the attached PDF shows them,
reusing the PDF's label sets and Babel; a full translation of the prose is not done yet.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal, get_args

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from invoiceflow.documents.model import InvoiceDocument
from invoiceflow.documents.pdf import labels_for

EmailTemplate = Literal["invoice_issued", "payment_reminder", "status_changed", "password_reset", "document_ready"]
EMAIL_TEMPLATES: Final[tuple[str, ...]] = get_args(EmailTemplate)
TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
DEFAULT_MESSAGE_ID_DOMAIN = "invoiceflow.local"

# The facts of an invoice an email repeats, in this order; the labels are the PDF's.
_FACTS = ("number", "issue_date", "due_date", "gross_total", "paid", "amount_due")

STATUS_WORDS: Final[dict[str, str]] = {
    "draft": "draft",
    "sent": "issued",
    "overdue": "overdue",
    "paid": "paid",
    "cancelled": "cancelled",
}


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    text: str
    html: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        # Only the HTML templates escape: the text part is text, and a client named "A & B" stays "A & B".
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        # A variable a template names but the context lacks is a bug, not an empty string in a client's email.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(template: EmailTemplate, context: Mapping[str, Any]) -> RenderedEmail:
    """The text and HTML bodies of `template` (templates/{template}.txt.j2 and .html.j2)."""
    if template not in EMAIL_TEMPLATES:
        raise ValueError(f"unknown email template {template!r}")
    env = _environment()
    return RenderedEmail(
        text=env.get_template(f"{template}.txt.j2").render(context),
        html=env.get_template(f"{template}.html.j2").render(context),
    )


def message_id_for(organization_id: uuid.UUID, dedupe_key: str, sender: str) -> str:
    """The Message-ID of a notification: derived from what identifies it, so every retry sends the same one
    (and a mail client that received it twice shows it once). The domain is the sender's."""
    digest = hashlib.sha256(f"{organization_id}\n{dedupe_key}".encode()).hexdigest()[:40]
    address = parseaddr(sender)[1]
    domain = address.rpartition("@")[2] if "@" in address else ""
    return f"<{digest}@{domain or DEFAULT_MESSAGE_ID_DOMAIN}>"


def build_email(
    *,
    sender: str,
    to: str,
    subject: str,
    body: RenderedEmail,
    message_id: str,
    sent_date: datetime,
    attachments: Iterable[Attachment] = (),
) -> EmailMessage:
    """multipart/mixed(multipart/alternative(text, HTML), attachments…), or just the alternative part."""
    if sent_date.tzinfo is None:
        raise ValueError("sent_date must be timezone-aware")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(sent_date)
    msg["Message-ID"] = message_id
    msg.set_content(body.text)
    msg.add_alternative(body.html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not subtype:
            raise ValueError(f"attachment content type {attachment.content_type!r} is not type/subtype")
        msg.add_attachment(attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return msg


# --------------------------------------------------------------------------------------------- contexts


@lru_cache(maxsize=64)
def _locale(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


def _money(value: Decimal, currency: str, locale: Locale) -> str:
    return str(format_currency(value, currency, locale=locale))


def _date(value: date, locale: Locale) -> str:
    return str(format_date(value, "medium", locale=locale))


def invoice_context(doc: InvoiceDocument) -> dict[str, Any]:
    """What every invoice email shows, from the document model the PDF is drawn from (same totals, to the cent).

    `facts` holds (label, value) rows in the client's language; amounts and dates are formatted for that
    language by Babel, as the PDF formats them.
    """
    locale = _locale(doc.language)
    labels = labels_for(doc.language)
    values: dict[str, str | None] = {
        "number": doc.number or None,
        "issue_date": _date(doc.issue_date, locale),
        "due_date": _date(doc.due_date, locale) if doc.due_date else None,
        "gross_total": _money(doc.gross_total, doc.currency, locale),
        "paid": _money(doc.prepaid_amount, doc.currency, locale) if doc.prepaid_amount else None,
        "amount_due": _money(doc.amount_due, doc.currency, locale),
    }
    facts = [(labels[name], value) for name in _FACTS if (value := values[name]) is not None]
    payable = doc.kind == "invoice" and doc.amount_due > 0
    payment = [
        (labels[name], value)
        for name, value in (("iban", doc.iban), ("bic", doc.bic), ("payment_reference", doc.payment_reference))
        if value
    ]
    return {
        "lang": labels_language(doc.language),
        "kind": doc.kind,
        "document_label": labels[doc.kind],
        "document_word": "credit note" if doc.kind == "credit_note" else "invoice",
        "number": doc.number,
        "buyer_name": doc.buyer.name,
        "seller": {
            "name": doc.seller.name,
            "email": doc.seller.email or "",
            "phone": doc.seller.phone or "",
        },
        "issue_date": values["issue_date"],
        "due_date": values["due_date"] or "",
        "gross_total": values["gross_total"],
        "amount_due": values["amount_due"],
        "payable": payable,
        "facts": facts,
        "payment": payment if payable else [],
        "payment_terms": (doc.payment_terms or "") if payable else "",
    }


def labels_language(language: str) -> str:
    """The primary language subtag ("de" for "de-AT"), for the HTML `lang` attribute."""
    return language.replace("_", "-").split("-", 1)[0].lower() or "en"


def subject_for(purpose: EmailTemplate, doc: InvoiceDocument | None = None, **extra: str) -> str:
    """English subjects: the invoice number first, so a mailbox search finds every message of an invoice."""
    if doc is None:
        if purpose == "password_reset":
            return "Reset your invoiceflow password"
        if purpose == "document_ready":
            return f"Your document {extra['filename']} is ready"
        raise ValueError(f"{purpose} needs an invoice")
    word = "Credit note" if doc.kind == "credit_note" else "Invoice"
    match purpose:
        case "invoice_issued":
            return f"{word} {doc.number} from {doc.seller.name}"
        case "payment_reminder":
            return f"Payment reminder: invoice {doc.number} from {doc.seller.name}"
        case "status_changed":
            return f"{word} {doc.number} is now {STATUS_WORDS.get(extra['new_status'], extra['new_status'])}"
    raise ValueError(f"{purpose} has no invoice subject")
