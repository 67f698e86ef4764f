"""Scheduled upkeep: expire lots, release stale holds, warn about expiring credits, delete
files past retention and what is left of sent emails (rows, and files in the outbox folder).
Every `serve` process runs it on a thread (web-only ones too); several processes sweeping at
once share the work. `removeany sweep` runs one pass."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from removeany.accounts import repository as accounts_repo
from removeany.context import Context
from removeany.credits import repository as credits_repo
from removeany.credits import service as ledger
from removeany.i18n import t, tn, use
from removeany.jobs import repository as jobs_repo
from removeany.jobs import service as jobs
from removeany.jobs.service import job_reference
from removeany.mail import service as mail
from removeany.moderation import service as moderation
from removeany.privacy.service import run_retention

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    expired_credits: int
    released_credits: int
    expiry_warnings: int
    deleted_emails: int  # rows, and copies in the outbox folder


def run_sweeps(ctx: Context) -> SweepReport:
    now = ctx.now()
    with ctx.db.transaction() as session:
        expired = ledger.expire_lots(session, now)
        for user_id in jobs_repo.suspended_owners_of_queued(session):
            jobs.cancel_queued_of(session, user_id, now)
        moderation.stop_work_of_stopped_services(session, now=now)
        unsettled = {job_reference(job_id) for job_id in jobs_repo.unfinished_ids(session)}
        released = ledger.release_stale_holds(session, now, in_use=unsettled)
    warnings = _warn_expiring(ctx)
    run_retention(ctx)
    with ctx.db.transaction() as session:
        deleted = mail.delete_expired(
            session,
            now=ctx.now(),
            keep_sent=timedelta(hours=ctx.settings.mail_keep_sent_hours),
            keep_failed=timedelta(days=ctx.settings.mail_keep_failed_days),
        )
    deleted += ctx.mail.expire_copies(now=ctx.now())
    ctx.db.purge()  # what the sweep deleted leaves the database's write-ahead log too
    return SweepReport(expired, released, warnings, deleted)


def _warn_expiring(ctx: Context) -> int:
    now = ctx.now()
    horizon = now + timedelta(days=ctx.settings.expiry_warning_days)
    sent = 0
    with ctx.db.transaction() as session:
        for lot in credits_repo.lots_to_warn(session, now, horizon):
            user = accounts_repo.user_by_id(session, lot.user_id)
            lot.expiry_warned_at = now
            if user is None:
                continue
            with use(user.locale):
                mail.write(
                    session,
                    to=user.email,
                    subject=tn(
                        "1 RemoveAny credit expires soon",
                        "{n} RemoveAny credits expire soon",
                        lot.remaining,
                    ),
                    body=tn(
                        "1 of your credits expires on {date}.",
                        "{n} of your credits expire on {date}.",
                        lot.remaining,
                        date=f"{lot.expires_at:%Y-%m-%d %H:%M} UTC",
                    )
                    + "\n"
                    + t("Use them before then; expired credits cannot be restored or refunded.")
                    + "\n\n"
                    + t("Your credits: {link}", link=f"{ctx.settings.base_url.rstrip('/')}/billing")
                    + "\n",
                    user_id=user.id,
                    now=now,
                )
            sent += 1
    return sent


class Sweeper:
    """Runs `run_sweeps` every `interval` seconds on a daemon thread until stopped."""

    def __init__(self, ctx: Context, interval: float):
        self.ctx = ctx
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="removeany-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                report = run_sweeps(self.ctx)
            except Exception:
                log.exception("maintenance sweep failed")
            else:
                if any(vars(report).values()):
                    log.info("maintenance: %s", report)
