"""Templates and MIME messages, without a database: every purpose renders, escapes hostile text in HTML, and
names no variable its context lacks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from jinja2 import UndefinedError

from invoiceflow.documents.pdf import LABELS
from invoiceflow.notifications.render import (
    EMAIL_TEMPLATES,
    Attachment,
    RenderedEmail,
    build_email,
    invoice_context,
    message_id_for,
    render_email,
)
from tests.documents.helpers import client_row, make_document, org_row

HOSTILE = '<script>alert("x")</script> & Co'


def hostile_document(language: str = "en", **extra: Any) -> Any:
    return make_document(
        language=language,
        client=client_row(name=HOSTILE, language=language),
        org=org_row(name="<b>Evil</b> Seller", email="billing@acme.example"),
        **extra,
    )


def contexts(language: str = "en") -> dict[str, dict[str, Any]]:
    """A full context for every template, with hostile text wherever a person or a file is named."""
    invoice = invoice_context(hostile_document(language))
    return {
        "invoice_issued": invoice,
        "payment_reminder": invoice | {"days_overdue": 3},
        "status_changed": invoice
        | {"old_status": "sent", "new_status": "paid", "old_status_word": "issued", "new_status_word": "paid"},
        "password_reset": {
            "lang": "en",
            "user_name": HOSTILE,
            "token": "ifp_<token>",
            "reset_link": "https://app.example/reset-password?token=a&b=<c>",
            "ttl_hours": 1,
        },
        "document_ready": {
            "lang": "en",
            "recipient_name": HOSTILE,
            "organization_name": HOSTILE,
            "filename": "<img src=x onerror=alert(1)>.xlsx",
            "download_url": "https://app.example/api/v1/downloads/abc",
            "expires_at": "2026-11-23 10:00 UTC",
        },
    }


def test_there_is_a_context_for_every_template() -> None:
    assert set(contexts()) == set(EMAIL_TEMPLATES)


@pytest.mark.parametrize("template", EMAIL_TEMPLATES)
def test_html_escapes_hostile_text_and_the_text_part_keeps_it(template: Any) -> None:
    body = render_email(template, contexts()[template])

    assert "<script>" not in body.html
    assert "<img src=x" not in body.html
    assert "<b>Evil</b>" not in body.html
    assert body.html.startswith("<!DOCTYPE html>")
    if template in ("invoice_issued", "payment_reminder", "status_changed"):
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in body.html
        assert HOSTILE in body.text
        assert "&lt;b&gt;Evil&lt;/b&gt; Seller" in body.html
    assert "&lt;" not in body.text
    assert "&amp;" not in body.text


_INVOICE_NEEDS = {"lang", "document_label", "number", "buyer_name", "seller", "facts"}
# The variables each template prints: without any of them rendering fails (StrictUndefined), never a blank.
NEEDS = {
    "invoice_issued": _INVOICE_NEEDS | {"document_word", "payable", "amount_due", "due_date", "payment"},
    "payment_reminder": _INVOICE_NEEDS | {"days_overdue", "amount_due", "due_date", "payment"},
    "status_changed": _INVOICE_NEEDS | {"document_word", "old_status_word", "new_status_word", "new_status"},
    "password_reset": {"lang", "user_name", "token", "reset_link", "ttl_hours"},
    "document_ready": {"lang", "recipient_name", "organization_name", "filename", "download_url", "expires_at"},
}


@pytest.mark.parametrize("template", EMAIL_TEMPLATES)
def test_a_missing_variable_is_an_error_not_a_blank(template: Any) -> None:
    full = contexts()[template]
    render_email(template, full)
    for name in NEEDS[template]:
        with pytest.raises(UndefinedError):
            render_email(template, {k: v for k, v in full.items() if k != name})


def test_an_unknown_template_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown email template"):
        render_email("newsletter", {})  # type: ignore[arg-type]


def test_invoice_facts_follow_the_clients_language_as_the_pdf_does() -> None:
    german = invoice_context(make_document(language="de", amount_paid="100.00"))
    assert german["lang"] == "de"
    assert german["document_label"] == LABELS["de"]["invoice"]
    facts = dict(german["facts"])
    assert facts[LABELS["de"]["number"]] == "INV-2026-00042"
    assert facts[LABELS["de"]["due_date"]] == "04.04.2026"
    assert facts[LABELS["de"]["gross_total"]] == "2.163,43\xa0€"
    assert facts[LABELS["de"]["paid"]] == "100,00\xa0€"
    assert facts[LABELS["de"]["amount_due"]] == "2.063,43\xa0€"
    assert german["payable"] is True
    assert dict(german["payment"])[LABELS["de"]["iban"]] == "NL91ABNA0417164300"

    english = invoice_context(make_document(language="en"))
    assert dict(english["facts"])["Total incl. VAT"] == "€2,163.43"
    assert "Paid" not in dict(english["facts"])
    # A language without PDF labels falls back to English labels.
    assert invoice_context(make_document(language="sw"))["document_label"] == "Invoice"


def test_a_yen_invoice_shows_no_decimals() -> None:
    doc = make_document(language="en", currency="JPY", lines=None)
    total = dict(invoice_context(doc)["facts"])["Total incl. VAT"]
    assert total.startswith("¥")
    assert "." not in total


def test_a_credit_note_asks_for_no_payment() -> None:
    context = invoice_context(make_document(language="en", kind="credit_note"))
    body = render_email("invoice_issued", context)
    assert context["payable"] is False
    assert "credit note INV-2026-00042" in body.text
    assert "Please pay" not in body.text
    assert "IBAN" not in body.text


def test_the_message_id_is_stable_per_key_and_uses_the_senders_domain() -> None:
    org = uuid.uuid4()
    one = message_id_for(org, "invoice_issued:1", "Acme <billing@acme.example>")
    assert one == message_id_for(org, "invoice_issued:1", "Acme <billing@acme.example>")
    assert one != message_id_for(org, "invoice_issued:2", "Acme <billing@acme.example>")
    assert one != message_id_for(uuid.uuid4(), "invoice_issued:1", "Acme <billing@acme.example>")
    assert one.startswith("<")
    assert one.endswith("@acme.example>")
    assert message_id_for(org, "k", "no address").endswith("@invoiceflow.local>")


def test_the_message_has_text_html_and_the_attachment() -> None:
    sent = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    msg = build_email(
        sender="Acme Söhne <billing@acme.example>",
        to="Müller <einkauf@mueller.example>",
        subject="Rechnung INV-1 – Müller",
        body=RenderedEmail(text="Hallo\n", html="<p>Hallo</p>\n"),
        message_id="<abc@acme.example>",
        sent_date=sent,
        attachments=[Attachment(filename="INV-1.pdf", content=b"%PDF-1.7 test")],
    )
    parsed = message_from_bytes(bytes(msg), policy=policy.default)
    assert isinstance(parsed, EmailMessage)

    assert parsed.get_content_type() == "multipart/mixed"
    [alternative, attachment] = list(parsed.iter_parts())
    assert isinstance(alternative, EmailMessage)
    assert isinstance(attachment, EmailMessage)
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "INV-1.pdf"
    assert attachment.get_content() == b"%PDF-1.7 test"
    assert parsed["Subject"] == "Rechnung INV-1 – Müller"
    assert parsed["To"] == "Müller <einkauf@mueller.example>"
    assert parsed["Message-ID"] == "<abc@acme.example>"
    assert parsed["Date"] == "Mon, 23 Nov 2026 09:30:00 +0000"
    # Non-ASCII headers travel encoded (RFC 2047): any SMTP server takes the message.
    assert bytes(msg).isascii()


def test_without_attachments_the_message_is_just_the_alternative() -> None:
    msg = build_email(
        sender="a@example.com",
        to="b@example.com",
        subject="s",
        body=RenderedEmail(text="t", html="<p>t</p>"),
        message_id="<m@example.com>",
        sent_date=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert msg.get_content_type() == "multipart/alternative"


def test_a_naive_date_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_email(
            sender="a@example.com",
            to="b@example.com",
            subject="s",
            body=RenderedEmail(text="t", html="t"),
            message_id="<m@example.com>",
            sent_date=datetime(2026, 1, 1),
        )
