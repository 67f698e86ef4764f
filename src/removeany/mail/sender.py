"""Delivers the emails that committed transactions wrote (`mail.service.write`). A task
boundary: it opens its own transactions, never one of a request's.

An email is claimed (for CLAIM, so a sender that dies gives it back), handed to the transport
outside any transaction, then marked sent, or its failure is recorded with the reason and it
is tried again with growing pauses until `MAIL_RETRY_HOURS` after it was written, then given
up. Claims skip rows another sender is claiming, so any number of processes may send at once
and each email goes out once; only a sender whose claim lapsed (it stalled longer than CLAIM
between handing an email over and recording it) can repeat one, and it says so in the log."""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from removeany.infra.db import Database
from removeany.infra.logs import hide_addresses
from removeany.infra.mail import (
    DeliveryError,
    OutboxFolder,
    Transport,
    build_message,
    recipient_tag,
)
from removeany.infra.settings import Settings
from removeany.mail import repository as repo
from removeany.mail.models import OutgoingMail
from removeany.mail.service import FORGOTTEN, WRITTEN

log = logging.getLogger(__name__)


def _masked_trace(exc: BaseException) -> str:
    """The traceback as log.exception would print it (type, files, lines, causes), with
    addresses masked: an exception's text may quote the recipient."""
    return hide_addresses("".join(traceback.format_exception(exc)).rstrip())


CLAIM = timedelta(minutes=10)  # far above a batch's worst case (BATCH emails, 30 s timeouts)
BATCH = 20
FIRST_PAUSE = 30.0  # seconds before the second attempt; doubled each time, up to LONGEST_PAUSE
LONGEST_PAUSE = 3600.0


def pause_after(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt."""
    return timedelta(seconds=min(FIRST_PAUSE * 2 ** (attempts - 1), LONGEST_PAUSE))


@dataclass(frozen=True)
class _Claimed:
    """What a sender needs of an email once the claiming transaction has ended."""

    id: int
    to: str
    subject: str
    body: str
    message_id: str
    created_at: datetime
    attempts: int

    @classmethod
    def of(cls, row: OutgoingMail) -> _Claimed:
        return cls(
            row.id,
            row.to_address,
            row.subject,
            row.body,
            row.message_id,
            row.created_at,
            row.attempts,
        )


class MailSender:
    """Delivers emails after commit: at once in the committing thread for an immediate
    transport (the outbox folder), else on a thread of its own, woken by each commit that wrote
    email and every MAIL_POLL_SECONDS (emails other processes wrote, retries). A request never
    waits for an SMTP server: how long it waited would tell whether an address has an account."""

    def __init__(
        self,
        db: Database,
        transport: Transport,
        settings: Settings,
        now: Callable[[], datetime],
    ):
        self.db = db
        self.transport = transport
        self.settings = settings
        self.now = now
        # Copies of sent emails kept on disk (the embedded default's transport; an operator
        # who moved to SMTP may still have some): erased and expired like the rows.
        self.outbox = OutboxFolder(settings.outbox_dir)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        db.after_commit(self._committed)

    def _committed(self, info: dict[str, Any]) -> None:
        """A transaction committed: delete the outbox copies of the emails to addresses it
        erased, then send the emails it wrote (an erasure's own notice among them)."""
        for address in info.pop(FORGOTTEN, ()):
            self.outbox.forget(address)
        written: list[OutgoingMail] | None = info.pop(WRITTEN, None)
        if not written:
            return
        if self.transport.immediate:
            # By the range of their ids: others in it that are due may go too (no harm), and
            # a terms notice to every user needs no list of thousands of ids. A failure is
            # recorded and retried like any other.
            ids = [mail.id for mail in written]
            self.deliver(ids=(min(ids), max(ids)))
        else:
            self.wake()

    def expire_copies(self, *, now: datetime) -> int:
        """Delete outbox files older than sent emails are kept (MAIL_KEEP_SENT_HOURS)."""
        return self.outbox.expire(now - timedelta(hours=self.settings.mail_keep_sent_hours))

    # --- the background thread ----------------------------------------------------------------

    def start(self) -> None:
        """Run the sender thread (started on first use too, and again in a forked process)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(target=self._loop, name="mail", daemon=True)
                self._thread.start()

    def wake(self) -> None:
        self.start()
        self._wake.set()

    def close(self) -> None:
        """Let the thread finish the batch it is sending, then stop it; what is left waits in
        the database for the next sender (`serve`, or `removeany sweep`)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join(timeout=CLAIM.total_seconds())

    def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                self.deliver()
            except Exception as exc:
                log.error("mail delivery failed:\n%s", _masked_trace(exc))
            if self._stopping.is_set():
                return
            self._wake.wait(self.settings.mail_poll_seconds)

    # --- one pass -----------------------------------------------------------------------------

    def deliver(self, ids: tuple[int, int] | None = None) -> int:
        """Send what is due (only ids in the range `ids` when given), batch by batch, until
        nothing is left, the transport fails for a whole batch, or the sender is stopping.
        Returns how many were sent."""
        sent = 0
        while True:
            claim = uuid.uuid4().hex
            with self.db.transaction() as session:
                now = self.now()
                rows = repo.claim_due(
                    session, now=now, claim=claim, until=now + CLAIM, limit=BATCH, ids=ids
                )
                batch = [_Claimed.of(row) for row in rows]
            if not batch:
                return sent
            delivered, broken = self._send(batch, claim)
            sent += delivered
            if broken or self._stopping.is_set():
                return sent

    def _send(self, batch: list[_Claimed], claim: str) -> tuple[int, bool]:
        """Returns how many were delivered, and whether the transport broke down (the rest of
        the batch then fails with the same reason, untried)."""
        delivered = 0
        left = list(batch)
        broke: DeliveryError | None = None
        try:
            with self.transport.connect() as connection:
                while left and broke is None:
                    mail = left.pop(0)
                    try:
                        connection.send(self._message(mail))
                    except DeliveryError as exc:
                        self._failed(mail, claim, exc)
                        broke = exc if exc.broken else None
                    except Exception as exc:  # a bug: recorded and retried like a failure
                        log.error(
                            "email #%d could not be handed over:\n%s", mail.id, _masked_trace(exc)
                        )
                        self._failed(mail, claim, DeliveryError(f"{type(exc).__name__}: {exc}"))
                    else:
                        self._sent(mail, claim)
                        delivered += 1
        except DeliveryError as exc:
            broke = exc
        for mail in left:
            assert broke is not None
            self._failed(mail, claim, broke)
        return delivered, broke is not None

    def _message(self, mail: _Claimed) -> EmailMessage:
        return build_message(
            self.settings.mail_from,
            mail.to,
            mail.subject,
            mail.body,
            message_id=mail.message_id,
            date=mail.created_at,
        )

    def _sent(self, mail: _Claimed, claim: str) -> None:
        with self.db.transaction() as session:
            held = repo.mark_sent(session, mail.id, claim, now=self.now())
        if not held:
            log.warning(
                "email #%d was sent, but this sender no longer held it: its claim lapsed (so "
                "another sender may have sent it too) or its account was erased",
                mail.id,
            )

    def _failed(self, mail: _Claimed, claim: str, exc: DeliveryError) -> None:
        """Record the failure (the row keeps the server's words whole, for the admin page, and
        goes with the email); the log line names the email by id and its recipient by
        `recipient_tag` (as the outbox files do), with addresses in the reason masked."""
        now = self.now()
        attempt = mail.attempts + 1
        deadline = mail.created_at + timedelta(hours=self.settings.mail_retry_hours)
        to, reason = recipient_tag(mail.to), hide_addresses(exc.reason)
        with self.db.transaction() as session:
            if exc.permanent or now >= deadline:
                repo.give_up(session, mail.id, claim, now=now, error=exc.reason)
                log.error(
                    "email #%d to %s given up (attempt %d): %s",
                    mail.id,
                    to,
                    attempt,
                    reason,
                )
                return
            due = min(now + pause_after(attempt), deadline)
            repo.retry_later(session, mail.id, claim, due_at=due, error=exc.reason)
        log.warning(
            "email #%d to %s not delivered (attempt %d): %s; next attempt in %d s",
            mail.id,
            to,
            attempt,
            reason,
            (due - now).total_seconds(),
        )
