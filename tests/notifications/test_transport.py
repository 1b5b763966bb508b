"""The transport configuration: INVOICEFLOW_SMTP_URL forms, the sender settings, outbox file names."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from invoiceflow.core.mailer import SmtpConfig, SmtpUrlError, build_message, deliver, outbox_filename, write_outbox
from invoiceflow.core.settings import DEFAULT_SENDER, Settings
from invoiceflow.notifications.transport import (
    OutboxTransport,
    SlackWebhook,
    SmtpTransport,
    email_transport,
    slack_escape,
    slack_webhook,
)


def test_smtp_urls_pick_starttls_implicit_tls_or_plain() -> None:
    starttls = SmtpConfig.from_url("smtp://user:p%40ss@mail.example")
    assert (starttls.host, starttls.port, starttls.starttls, starttls.implicit_tls) == (
        "mail.example",
        587,
        True,
        False,
    )
    assert (starttls.username, starttls.password) == ("user", "p@ss")
    assert starttls.timeout == 30

    tls = SmtpConfig.from_url("smtps://mail.example")
    assert (tls.port, tls.starttls, tls.implicit_tls, tls.username) == (465, False, True, None)
    assert tls.label == "smtps://mail.example:465"

    plain = SmtpConfig.from_url("smtp://127.0.0.1:2525?starttls=false&timeout=2.5")
    assert (plain.port, plain.starttls, plain.timeout) == (2525, False, 2.5)
    # The label never carries the credentials.
    assert "p@ss" not in starttls.label
    assert "user" not in starttls.label


@pytest.mark.parametrize(
    "url", ["http://mail.example", "smtp://", "smtp://mail.example?timeout=soon", "smtp://mail.example?timeout=0"]
)
def test_unusable_smtp_urls_are_refused(url: str) -> None:
    with pytest.raises(SmtpUrlError):
        SmtpConfig.from_url(url)


def test_settings_choose_the_outbox_or_smtp(tmp_path: Path) -> None:
    outbox = email_transport(Settings(data_dir=tmp_path))
    assert isinstance(outbox, OutboxTransport)
    assert outbox.folder == tmp_path / "outbox"
    smtp = email_transport(Settings(data_dir=tmp_path, smtp_url="smtps://u:p@mail.example"))
    assert isinstance(smtp, SmtpTransport)
    assert smtp.config.implicit_tls is True


def test_the_sender_setting_has_a_new_name_and_keeps_the_old_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INVOICEFLOW_SMTP_FROM", raising=False)
    monkeypatch.delenv("INVOICEFLOW_MAIL_FROM", raising=False)
    assert Settings().smtp_from == DEFAULT_SENDER == "invoiceflow <no-reply@invoiceflow.local>"
    monkeypatch.setenv("INVOICEFLOW_MAIL_FROM", "Old <old@example.com>")
    assert Settings().smtp_from == "Old <old@example.com>"
    monkeypatch.setenv("INVOICEFLOW_SMTP_FROM", "New <new@example.com>")
    settings = Settings()
    assert settings.smtp_from == settings.mail_from == "New <new@example.com>"


def test_the_slack_webhook_is_optional_and_its_secret_stays_out_of_the_label() -> None:
    assert slack_webhook(Settings()) is None
    assert slack_webhook(Settings(slack_webhook_url="  ")) is None
    hook = slack_webhook(Settings(slack_webhook_url="https://hooks.slack.com/services/T1/B2/tok3nXYZ"))
    assert isinstance(hook, SlackWebhook)
    assert hook.label == "slack:hooks.slack.com"
    assert "tok3nXYZ" not in repr(Settings(slack_webhook_url="https://hooks.slack.com/services/T1/B2/tok3nXYZ"))


def test_slack_control_characters_are_escaped() -> None:
    assert slack_escape("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"


def test_outbox_files_are_named_after_the_message_id_and_replaced_atomically(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["To"] = "b@example.com"
    msg["Message-ID"] = "<abc.123@example.com>"
    msg.set_content("first")
    path = write_outbox(msg, tmp_path)
    assert path.name == "abc.123_example.com.eml"
    assert outbox_filename("<../../etc/passwd@x>") == "etc_passwd_x.eml"

    msg.set_content("second")
    assert write_outbox(msg, tmp_path) == path
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert b"second" in path.read_bytes()


def test_the_password_reset_path_of_auth_still_writes_to_the_outbox(tmp_path: Path) -> None:
    msg = build_message(sender=DEFAULT_SENDER, to="ada@example.com", subject="Reset", text="token")
    where = deliver(msg, smtp_url=None, outbox_dir=tmp_path)
    assert Path(where).parent == tmp_path
    assert Path(where).read_bytes() == bytes(msg)
