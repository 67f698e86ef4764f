"""How an email leaves: an .eml file in the outbox folder (embedded default) or SMTP. What is
sent, and when, is `removeany.mail`'s: emails wait in the database until a sender hands them
to a transport."""

from __future__ import annotations

import hashlib
import re
import smtplib
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr, parsedate_to_datetime
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
    msg["Message-ID"] = sender_message_id(message_id, sender)
    # Plain 7bit keeps links on one line for people reading the outbox; non-ASCII needs encoding.
    msg.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
    return msg


def sender_message_id(message_id: str, sender: str) -> str:
    """`message_id` (`<unique@domain>`, stored when the email was written) in the sending
    address's domain: mail filters read a Message-ID in another domain than From's as a sign
    of spam, and the operator's REMOVEANY_MAIL_FROM is the domain they vouch for. The unique
    part stays, so a retried email keeps its id (and receivers can drop the copy)."""
    unique, at, _ = message_id.strip("<>").rpartition("@")
    domain = parseaddr(sender)[1].rpartition("@")[2]
    if not at or not domain:
        return message_id
    return f"<{unique}@{domain}>"


# An outbox file's name: when the email was written, whom it is to (hashed), and a random part.
OUTBOX_NAME = re.compile(r"^(\d{8}T\d{6}Z)-([0-9a-f]{16})-[0-9a-f]{32}\.eml$")
STAMP = "%Y%m%dT%H%M%SZ"


def recipient_tag(address: str) -> str:
    """What an outbox file's name says of its recipient: enough to find their emails when the
    account is erased, without the address itself."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:16]


class OutboxFolder:
    """The outbox folder: each email an .eml file, which holds the recipient's address and
    perhaps a live link, so the files go when the account is erased (`forget`) and after the
    sent emails' retention (`expire`)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, msg: EmailMessage) -> None:
        """The whole file or none (a temporary name first)."""
        written = parsedate_to_datetime(str(msg["Date"])).astimezone(UTC)
        name = f"{written:{STAMP}}-{recipient_tag(str(msg['To']))}-{uuid.uuid4().hex}.eml"
        tmp = self.path / f".{name}.tmp"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(bytes(msg))
            tmp.replace(self.path / name)
        except OSError as exc:
            raise DeliveryError(
                f"could not write to {self.path}: {exc.strerror or exc}", broken=True
            ) from exc

    def forget(self, address: str) -> int:
        """Delete every email to `address`; returns how many."""
        tag = recipient_tag(address)
        return self._delete(lambda _written, to: to == tag)

    def expire(self, before: datetime) -> int:
        """Delete every email written before `before`; returns how many."""
        return self._delete(lambda written, _to: written < before)

    def _delete(self, doomed: Callable[[datetime, str], bool]) -> int:
        deleted = 0
        for path in self.path.glob("*.eml") if self.path.is_dir() else ():
            try:
                if doomed(*self._written_and_to(path)):
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:  # another process deleted it first
                continue
        return deleted

    @staticmethod
    def _written_and_to(path: Path) -> tuple[datetime, str]:
        named = OUTBOX_NAME.match(path.name)
        if named:
            return datetime.strptime(named[1], STAMP).replace(tzinfo=UTC), named[2]
        # Written by an earlier release (a random name): its headers say.
        with path.open("rb") as fp:
            headers = BytesParser(policy=policy.default).parse(fp, headersonly=True)
        try:
            written = parsedate_to_datetime(str(headers["Date"])).astimezone(UTC)
        except (TypeError, ValueError):
            written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        return written, recipient_tag(str(headers["To"] or ""))


class FolderTransport:
    """Each email an .eml file in the outbox folder."""

    immediate = True

    def __init__(self, outbox: Path):
        self.outbox = OutboxFolder(outbox)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        yield self

    def send(self, msg: EmailMessage) -> None:
        self.outbox.write(msg)


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
