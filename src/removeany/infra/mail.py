"""How an email leaves: an .eml file in the outbox folder (embedded default) or SMTP. What is
sent, and when, is `removeany.mail`'s: emails wait in the database until a sender hands them
to a transport."""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

from removeany.infra.settings import Settings


class DeliveryError(Exception):
    """An email was not delivered. `permanent`: the server refused this email for good (a 5xx
    answer), so trying again cannot help. `broken`: the connection is unusable, so the other
    emails waiting for it were not delivered either."""

    def __init__(self, reason: str, *, permanent: bool = False, broken: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.broken = broken


class Connection(Protocol):
    def send(self, msg: EmailMessage) -> None:
        """Deliver one email; raises DeliveryError."""


class Transport(Protocol):
    # Delivered by the committing thread itself (a local folder: as fast as a file write, so
    # whoever caused an email finds it there at once), not by the background sender.
    immediate: bool

    def connect(self) -> AbstractContextManager[Connection]:
        """One connection for several emails; raises DeliveryError(broken=True)."""


def build_message(
    sender: str, to: str, subject: str, body: str, *, message_id: str, date: datetime
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    # Plain 7bit keeps links on one line for people reading the outbox; non-ASCII needs encoding.
    msg.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
    return msg


class FolderTransport:
    """Each email an .eml file in the outbox folder, written whole (a temporary name first)."""

    immediate = True

    def __init__(self, outbox: Path):
        self.outbox = outbox

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        yield self

    def send(self, msg: EmailMessage) -> None:
        name = f"{uuid.uuid4().hex}.eml"
        tmp = self.outbox / f".{name}.tmp"
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(bytes(msg))
            tmp.replace(self.outbox / name)
        except OSError as exc:
            raise DeliveryError(
                f"could not write to {self.outbox}: {exc.strerror or exc}", broken=True
            ) from exc


class SmtpTransport:
    immediate = False

    def __init__(self, settings: Settings):
        self.settings = settings

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        s = self.settings
        where = f"{s.smtp_host}:{s.smtp_port}"
        try:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"SMTP server {where} unreachable: {_why(exc)}", broken=True
            ) from exc
        try:
            try:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_username and s.smtp_password:
                    smtp.login(s.smtp_username, s.smtp_password)
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryError(
                    f"SMTP server {where} refused the session: {_why(exc)}", broken=True
                ) from exc
            yield _SmtpConnection(smtp, where)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()


class _SmtpConnection:
    def __init__(self, smtp: smtplib.SMTP, where: str):
        self.smtp = smtp
        self.where = where

    def send(self, msg: EmailMessage) -> None:
        try:
            self.smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"SMTP server {self.where} refused the recipient: {_why(exc)}",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP server {self.where} refused the email: {_why(exc)}",
                permanent=exc.smtp_code >= 500,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"SMTP server {self.where} lost the connection: {_why(exc)}", broken=True
            ) from exc


def _why(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {_text(answer)}" for code, answer in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return str(exc) or type(exc).__name__


def _text(answer: bytes | str) -> str:
    return answer.decode(errors="replace") if isinstance(answer, bytes) else answer


def make_transport(settings: Settings) -> Transport:
    if settings.mail_backend == "smtp":
        return SmtpTransport(settings)
    return FolderTransport(settings.outbox_dir)
