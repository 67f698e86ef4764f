"""Privacy: files deleted after the retention period or on request, data export, account
erasure that keeps an anonymised ledger. Flushes, never commits, except `run_retention`, which
is a task boundary of its own (the maintenance loop and `removeany sweep` call it)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from removeany.accounts import security
from removeany.accounts.models import (
    ApiKey,
    EmailReservation,
    KnownDevice,
    PasswordResetToken,
    RecoveryCode,
    User,
    WebSession,
)
from removeany.batches.models import Batch
from removeany.billing import service as billing
from removeany.credits import free
from removeany.credits import service as ledger
from removeany.credits.models import (
    CreditEntry,
    CreditHold,
    CreditLot,
    PromoCode,
    PromoRedemption,
    SignupGrant,
)
from removeany.engine.io import sniff_format
from removeany.errors import Conflict
from removeany.i18n import t, use
from removeany.infra.db import PURGE
from removeany.infra.storage import Storage
from removeany.jobs import repository as jobs_repo
from removeany.jobs import service as jobs_service
from removeany.jobs.models import Job
from removeany.jobs.schemas import UPLOADED_OPTIONS
from removeany.legal.models import TermsAcceptance
from removeany.mail import service as mail
from removeany.privacy.models import JobFileDeletion

if TYPE_CHECKING:
    from removeany.context import Context

# A cancelled job never runs again: its files are as finished with as a failed one's.
FINISHED = ("succeeded", "failed", "cancelled")
BATCH = 200


def deletion_of(session: Session, job_id: str) -> JobFileDeletion | None:
    return session.get(JobFileDeletion, job_id)


def job_keys(job: Job) -> list[str]:
    """The original and every attempt's result: an attempt whose worker died after storing
    its result, or whose result was discarded while the store was down, left one no job
    row names."""
    attempts = [jobs_service.result_key(job.id, n) for n in range(1, job.attempts + 1)]
    return list(dict.fromkeys(k for k in (job.input_key, job.result_key, *attempts) if k))


def deleted_among(session: Session, job_ids: Sequence[str]) -> set[str]:
    """Which of these jobs' files are deleted (a page of a batch's items)."""
    if not job_ids:
        return set()
    found = session.scalars(
        select(JobFileDeletion.job_id).where(JobFileDeletion.job_id.in_(job_ids))
    )
    return set(found)


def results_kept(session: Session, batch_id: str) -> int:
    """How many of a batch's results are still stored: what its results ZIP would hold."""
    count = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(
            Job.batch_id == batch_id,
            Job.status == "succeeded",
            ~exists().where(JobFileDeletion.job_id == Job.id),
        )
    )
    return int(count or 0)


def mark_deleted(session: Session, job: Job, *, reason: str, now: datetime) -> list[str]:
    """Record that the job's files are gone, and empty the options that held an upload (a
    background photo, a mask); returns the storage keys, which the caller deletes before its
    commit: if the store fails (an S3 outage), the record rolls back and the deletion can be
    retried, where a record over files left behind would never be."""
    if deletion_of(session, job.id) is None:
        session.add(JobFileDeletion(job_id=job.id, deleted_at=now, reason=reason))
    job.options = _without_uploads(job.options)
    batch = session.get(Batch, job.batch_id) if job.batch_id else None
    if batch is not None:  # a watermark batch's mask is in the batch's options too
        batch.options = _without_uploads(batch.options)
    session.flush()
    return job_keys(job)


def _without_uploads(options: dict[str, Any]) -> dict[str, Any]:
    """The same options (the same object when it holds no upload: nothing to write)."""
    if all(options.get(name) is None for name in UPLOADED_OPTIONS):
        return options
    return {k: None if k in UPLOADED_OPTIONS else v for k, v in options.items()}


def delete_files(storage: Storage, keys: Sequence[str]) -> None:
    for key in keys:
        storage.delete(key)


def delete_job_files(session: Session, job: Job, *, now: datetime) -> list[str]:
    """On request: a job that is still being processed keeps its files until it finishes."""
    if job.status not in FINISHED:
        raise Conflict(
            "This job is still being processed. Delete its files when it has finished.",
            code="job_not_finished",
        )
    return mark_deleted(session, job, reason="user", now=now)


def due_for_retention(session: Session, now: datetime, hours: float) -> Sequence[Job]:
    """Locked, skipping jobs another sweep holds (several processes sweep at once), so two
    sweeps never record the same job (the second's transaction failed on the key)."""
    cutoff = now - timedelta(hours=hours)
    stmt = (
        select(Job)
        .where(
            Job.status.in_(FINISHED),
            Job.created_at < cutoff,
            ~exists().where(JobFileDeletion.job_id == Job.id),
        )
        .order_by(Job.created_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True, key_share=True)
    )
    return session.scalars(stmt).all()


def run_retention(ctx: Context) -> int:
    """Delete originals and results of finished jobs older than the retention period
    (REMOVEANY_RETENTION_HOURS, default 24); forget stale throttle counters, reset links,
    ended sign-ins, devices unseen for KNOWN_DEVICE_DAYS and signup networks. Returns how
    many jobs' files were deleted."""
    with ctx.db.transaction() as session:
        security.prune(session, now=ctx.now(), device_days=ctx.settings.known_device_days)
        free.forget_signup_networks(session, now=ctx.now())
    total = 0
    while True:
        with ctx.db.transaction() as session:
            now = ctx.now()
            keys: list[str] = []
            jobs = due_for_retention(session, now, ctx.settings.retention_hours)
            for job in jobs:
                keys += mark_deleted(session, job, reason="retention", now=now)
            delete_files(ctx.storage, keys)  # before the commit: see mark_deleted
        total += len(jobs)
        if len(jobs) < BATCH:
            return total


# --- export ---------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_account(session: Session, storage: Storage, user: User) -> bytes:
    """A ZIP: account.json (everything we hold about the person) and images/ (stored files).
    Built in memory for the response and never stored."""
    from removeany.legal.service import acceptances

    jobs = session.scalars(select(Job).where(Job.user_id == user.id).order_by(Job.created_at))
    deleted = {
        d.job_id
        for d in session.scalars(
            select(JobFileDeletion)
            .join(Job, Job.id == JobFileDeletion.job_id)
            .where(Job.user_id == user.id)
        )
    }
    buffer = io.BytesIO()
    job_records: list[dict[str, Any]] = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for job in jobs:
            files: dict[str, str] = {}
            if job.id not in deleted:
                for label, key in (("original", job.input_key), ("result", job.result_key)):
                    if not key or not storage.exists(key):
                        continue
                    data = storage.get(key)
                    ext = (sniff_format(data) or "bin").lower().replace("jpeg", "jpg")
                    name = f"images/{job.id}/{label}.{ext}"
                    archive.writestr(name, data)
                    files[label] = name
            job_records.append(
                {
                    "id": job.id,
                    "service": job.service,
                    "status": job.status,
                    "options": job.options,
                    "cost": job.cost,
                    "input_name": job.input_name,
                    "batch_id": job.batch_id,
                    "path_in_batch": job.relative_path,
                    "input_size": [job.input_width, job.input_height],
                    "error_code": job.error_code,
                    "created_at": _iso(job.created_at),
                    "finished_at": _iso(job.finished_at),
                    "files": files,
                    "files_deleted": job.id in deleted,
                }
            )
        record = {
            "format": "removeany-export/1",
            "account": {
                "id": user.id,
                "email": user.email,
                "email_verified_at": _iso(user.email_verified_at),
                "created_at": _iso(user.created_at),
                "status": user.status,
                "two_factor": user.has_2fa,
                "password_changed_at": _iso(user.password_changed_at),
                "first_signed_in_at": _iso(user.first_signed_in_at),
                "language": user.locale,
            },
            "terms_acceptances": [
                {
                    "version": a.version,
                    "accepted_at": _iso(a.accepted_at),
                    "ip": a.ip,
                    "user_agent": a.user_agent,
                }
                for a in acceptances(session, user.id)
            ],
            "sessions": [
                {
                    "created_at": _iso(w.created_at),
                    "last_seen_at": _iso(w.last_seen_at),
                    "expires_at": _iso(w.expires_at),
                    "revoked_at": _iso(w.revoked_at),
                    "user_agent": w.user_agent,
                    "ip": w.ip,
                }
                for w in session.scalars(select(WebSession).where(WebSession.user_id == user.id))
            ],
            "api_keys": [
                {
                    "name": k.name,
                    "prefix": k.prefix,
                    "created_at": _iso(k.created_at),
                    "last_used_at": _iso(k.last_used_at),
                    "revoked_at": _iso(k.revoked_at),
                }
                for k in session.scalars(select(ApiKey).where(ApiKey.user_id == user.id))
            ],
            "reserved_addresses": [
                {"address": r.address, "until": _iso(r.expires_at)}
                for r in session.scalars(
                    select(EmailReservation).where(EmailReservation.user_id == user.id)
                )
            ],
            "known_devices": [
                {
                    "user_agent": d.user_agent,
                    "ip": d.ip,
                    "first_seen_at": _iso(d.first_seen_at),
                    "last_seen_at": _iso(d.last_seen_at),
                }
                for d in session.scalars(select(KnownDevice).where(KnownDevice.user_id == user.id))
            ],
            "credit_lots": [
                {
                    "id": lot.id,
                    "source": lot.source,
                    "amount": lot.amount,
                    "remaining": lot.remaining,
                    "expires_at": _iso(lot.expires_at),
                    "created_at": _iso(lot.created_at),
                }
                for lot in session.scalars(select(CreditLot).where(CreditLot.user_id == user.id))
            ],
            "credit_entries": [
                {
                    "lot_id": e.lot_id,
                    "kind": e.kind,
                    "amount": e.amount,
                    "reference": e.reference,
                    "created_at": _iso(e.created_at),
                }
                for e in session.scalars(
                    select(CreditEntry)
                    .where(CreditEntry.user_id == user.id)
                    .order_by(CreditEntry.id)
                )
            ],
            "jobs": job_records,
            "batches": [
                {
                    "id": b.id,
                    "name": b.name,
                    "service": b.service,
                    "options": b.options,
                    "items": b.total_items,
                    "rejected_files": b.rejected,
                    "created_at": _iso(b.created_at),
                    "cancelled_at": _iso(b.cancelled_at),
                }
                for b in session.scalars(
                    select(Batch).where(Batch.user_id == user.id).order_by(Batch.created_at)
                )
            ],
            "orders": [
                {
                    "id": o.id,
                    "credits": o.credits,
                    "amount_cents": o.amount_cents,
                    "currency": o.currency,
                    "provider": o.provider,
                    "status": o.status,
                    "refunded_cents": o.refunded_cents,
                    "created_at": _iso(o.created_at),
                    "paid_at": _iso(o.paid_at),
                }
                for o in billing.orders(session, user)
            ],
            "promo_codes_redeemed": [
                {"code": code, "lot_id": r.lot_id, "redeemed_at": _iso(r.created_at)}
                for r, code in session.execute(
                    select(PromoRedemption, PromoCode.code)
                    .join(PromoCode, PromoCode.id == PromoRedemption.promo_id)
                    .where(PromoRedemption.user_id == user.id)
                    .order_by(PromoRedemption.id)
                )
            ],
            "signup_grant": [
                {"granted": g.granted, "ip": g.ip, "created_at": _iso(g.created_at)}
                for g in session.scalars(select(SignupGrant).where(SignupGrant.user_id == user.id))
            ],
            # Kept for a short time after sending (bodies emptied once sent): see docs/trust.md.
            "emails": [
                {
                    "to": m.to_address,
                    "subject": m.subject,
                    "status": m.status,
                    "written_at": _iso(m.created_at),
                    "sent_at": _iso(m.finished_at) if m.status == "sent" else None,
                }
                for m in mail.of_account(session, user.id, user.email)
            ],
        }
        archive.writestr("account.json", json.dumps(record, indent=2, ensure_ascii=False))
    return buffer.getvalue()


# --- erasure --------------------------------------------------------------------------------


def erase_account(session: Session, user: User, *, now: datetime) -> list[str]:
    """Erase images and personal data at once; keep the credit ledger, anonymised (the users
    row stays as `deleted-<id>@invalid` so ledger rows keep their owner id). Returns storage
    keys to delete after commit."""
    if user.status == "deleted":
        return []
    keys: list[str] = []
    jobs_repo.lock_owner(session, user.id)  # before the jobs, as workers and the ledger lock
    jobs = session.scalars(select(Job).where(Job.user_id == user.id)).all()
    for job in jobs:
        if job.status == "running":
            # Its worker finds nothing left to settle and deletes the result it made.
            jobs_service.cancel(
                session,
                job.id,
                user.id,
                now,
                code="account_deleted",
                message="The account was deleted.",
            )
            session.refresh(job)  # or settled meanwhile: its result goes with the rest
        job.input_name = ""
        job.relative_path = None
        if job.status == "queued":
            # Not started: it will never run, and its held credits go back before revocation.
            job.status = "failed"
            job.error_code = "account_deleted"
            job.error_message = "The account was deleted."
            job.finished_at = now
            ledger.release(session, user.id, reference=f"job:{job.id}", now=now)
        keys += mark_deleted(session, job, reason="account", now=now)
    held = session.scalars(
        select(CreditHold.reference).where(
            CreditHold.user_id == user.id, CreditHold.status == "held"
        )
    ).all()
    for reference in set(held):
        ledger.release(session, user.id, reference=reference, now=now)
    available = ledger.balance(session, user.id, now).available
    if available > 0:
        ledger.revoke(session, user.id, available, reference="account deleted", now=now)
    # Batch names and rejected files' names are the user's file names.
    session.execute(update(Batch).where(Batch.user_id == user.id).values(name="", rejected=[]))
    free.forget_signup(session, user.id)
    billing.forget_buyer(session, user.id)
    for model in (
        WebSession,
        ApiKey,
        KnownDevice,
        RecoveryCode,
        PasswordResetToken,
        EmailReservation,
    ):
        session.execute(delete(model).where(model.user_id == user.id))
    session.execute(
        update(TermsAcceptance)
        .where(TermsAcceptance.user_id == user.id)
        .values(ip="", user_agent="")
    )
    security.throttle_clear(session, security.login_keys(user.email, "")[0])
    mail.forget_account(session, user.id, user.email)
    user.email = f"deleted-{user.id}@invalid"
    user.password_hash = "!"  # matches no password
    user.status = "deleted"
    user.status_reason = None
    user.deleted_at = now
    user.is_admin = False
    user.locked_at = None
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.flush()
    session.info[PURGE] = True
    return keys


def delete_account(ctx: Context, user_id: int, current_password: str) -> str:
    """The person's own deletion, after their current password; returns the old address (a
    confirmation is mailed there). Files are deleted before the commit (see mark_deleted)."""
    from removeany.accounts.flows import reauth_guard

    with reauth_guard(ctx, user_id), ctx.db.transaction() as session:
        user = session.get(User, user_id)
        assert user is not None
        security.reauthenticate(user, current_password)
        address, locale = user.email, user.locale
        keys = erase_account(session, user, now=ctx.now())
        delete_files(ctx.storage, keys)
        with use(locale):
            # Written after the erasure, which deleted the account's other emails; not tied
            # to the account, whose row no longer says whose it was.
            mail.write(
                session,
                to=address,
                subject=t("Your RemoveAny account was deleted"),
                body=t(
                    "Your RemoveAny account, its images and personal data were deleted as you "
                    "asked. Thank you for using RemoveAny."
                )
                + "\n",
                user_id=None,
                now=ctx.now(),
            )
    return address
