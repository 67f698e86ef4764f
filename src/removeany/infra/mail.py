"""Outgoing mail: .eml files in the outbox (embedded default) or SMTP."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from removeany.infra.settings import Settings


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="removeany.local")
    # Plain 7bit keeps links on one line for people reading the outbox; non-ASCII needs encoding.
    msg.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
    return msg


class OutboxMailer:
    def __init__(self, outbox: Path, sender: str):
        self.outbox = outbox
        self.sender = sender

    def send(self, to: str, subject: str, body: str) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        msg = build_message(self.sender, to, subject, body)
        name = f"{uuid.uuid4().hex}.eml"
        tmp = self.outbox / f".{name}.tmp"
        tmp.write_bytes(bytes(msg))
        tmp.replace(self.outbox / name)


class SmtpMailer:
    def __init__(self, settings: Settings):
        self.settings = settings

    def send(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        msg = build_message(s.mail_from, to, subject, body)
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username and s.smtp_password:
                smtp.login(s.smtp_username, s.smtp_password)
            smtp.send_message(msg)


def make_mailer(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(settings)
    return OutboxMailer(settings.outbox_dir, settings.mail_from)
