"""Outgoing mail: .eml files in the outbox (embedded default) or SMTP."""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from removeany.infra.settings import Settings

log = logging.getLogger(__name__)


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...

    def close(self) -> None:
        """Deliver what is still waiting (the process is about to end)."""


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

    def close(self) -> None:
        pass


class SmtpMailer:
    """Delivers from a thread of its own, in the order sent: a request does not wait for the
    SMTP server (how long it waited would tell whether an address has an account, as only
    existing ones get a reset link) nor hold its transaction open meanwhile. A message the
    server refuses is logged."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._waiting: queue.SimpleQueue[EmailMessage | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, to: str, subject: str, body: str) -> None:
        self._waiting.put(build_message(self.settings.mail_from, to, subject, body))
        with self._lock:  # started on first use, and again in a forked worker process
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(target=self._deliver, name="smtp", daemon=True)
                self._sender.start()

    def close(self) -> None:
        with self._lock:
            sender, self._sender = self._sender, None
        if sender is not None and sender.is_alive():
            self._waiting.put(None)
            sender.join()

    def _deliver(self) -> None:
        while (msg := self._waiting.get()) is not None:
            try:
                self._send_now(msg)
            except (OSError, smtplib.SMTPException):
                log.exception("could not send the email to %s", msg["To"])

    def _send_now(self, msg: EmailMessage) -> None:
        s = self.settings
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
