"""Account security rules: throttling, sign-in eligibility, password reset, TOTP 2FA with
recovery codes, known devices, revoking access. Flushes, never commits."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from removeany.accounts import passwords, sealing
from removeany.accounts import repository as repo
from removeany.accounts.models import (
    ApiKey,
    EmailReservation,
    KnownDevice,
    PasswordResetToken,
    RateCounter,
    RecoveryCode,
    User,
    WebSession,
)
from removeany.accounts.service import InvalidEmail, normalise_email, password_fingerprint
from removeany.errors import DomainError, Forbidden, NotFound, Unauthorized
from removeany.infra.ratelimit import SESSION_KEY as RATE_COUNTERS
from removeany.infra.ratelimit import RedisCounters

TOTP_ISSUER = "RemoveAny"
TOTP_PERIOD = 30
RECOVERY_CODES = 10
NOT_ME_SALT = "not-me"
NOT_ME_MAX_AGE = 14 * 24 * 3600
PENDING_2FA_SALT = "pending-2fa"
PENDING_2FA_MAX_AGE = 300
EMAIL_CHANGE_SALT = "email-change"
EMAIL_CHANGE_MAX_AGE = 24 * 3600


class TooManyAttempts(DomainError):
    status_code = 429
    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class TwoFactorRequired(DomainError):
    status_code = 401
    code = "totp_required"

    def __init__(self, pending: str):
        super().__init__(
            "Enter the 6-digit code from your authenticator app, or one of your recovery codes."
        )
        self.pending = pending


class InvalidCode(DomainError):
    status_code = 401
    code = "invalid_totp"


class ReauthRequired(DomainError):
    status_code = 401
    code = "reauth_failed"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def credential_fingerprint(user: User) -> str:
    """What an emailed link's validity is checked against: the account's password (its hash),
    address and lock. A new password, a reset, a confirmed email change or a report of
    unauthorized use changes it, and every reset or email-change link sent before dies with
    it: there is no list of links that each of those must remember to cancel."""
    locked = user.locked_at.astimezone(UTC).isoformat() if user.locked_at is not None else ""
    return sha256(f"{user.password_hash}\n{user.email}\n{locked}")[:32]


# --- throttling ------------------------------------------------------------------------------


def _counter(session: Session, key: str) -> RateCounter | None:
    return session.get(RateCounter, key, with_for_update=_pg(session))


def _redis(session: Session) -> RedisCounters | None:
    """The Redis counters when the deployment keeps throttles there (infra.ratelimit)."""
    counters = session.info.get(RATE_COUNTERS)
    return counters if isinstance(counters, RedisCounters) else None


def _window(session: Session, key: str) -> tuple[datetime, int] | None:
    redis_counters = _redis(session)
    if redis_counters is not None:
        return redis_counters.window(key)
    row = _counter(session, key)
    return (row.window_start, row.count) if row is not None else None


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def throttle_check(
    session: Session, key: str, *, limit: int, window: timedelta, now: datetime, what: str
) -> None:
    """Refuse with 429 while `key` has reached `limit` hits in its current window."""
    current = _window(session, key)
    if current is None:
        return
    start, count = current
    if start + window <= now or count < limit:
        return
    wait = max(1, int((start + window - now).total_seconds()))
    minutes = max(1, (wait + 59) // 60)
    raise TooManyAttempts(
        f"Too many {what}. Wait {minutes} minute{'s' if minutes != 1 else ''} and try again.",
        retry_after=wait,
    )


def throttle_hit(session: Session, key: str, *, window: timedelta, now: datetime) -> int:
    """Count one hit; a window that has passed starts again. Returns the count."""
    redis_counters = _redis(session)
    if redis_counters is not None:
        return redis_counters.hit(key, window=window, now=now)
    row = _counter(session, key)
    if row is None:
        try:
            with session.begin_nested():
                session.add(RateCounter(key=key[:200], window_start=now, count=1))
            return 1
        except IntegrityError:  # another process created it first
            row = _counter(session, key)
            assert row is not None
    if row.window_start + window <= now:
        row.window_start, row.count = now, 1
    else:
        row.count += 1
    session.flush()
    return row.count


def throttle_clear(session: Session, key: str) -> None:
    redis_counters = _redis(session)
    if redis_counters is not None:
        redis_counters.clear(key)
        return
    session.execute(delete(RateCounter).where(RateCounter.key == key))


def prune(session: Session, *, now: datetime, device_days: int) -> int:
    """Forget throttle counters whose window ended a day ago, reset links that expired a day
    ago, sign-ins (browser, IP) that expired or were signed out a day ago, known devices
    not seen for `device_days` and addresses no longer reserved (the retention sweep calls
    this)."""
    day = timedelta(days=1)
    reservations = session.execute(
        delete(EmailReservation).where(EmailReservation.expires_at <= now)
    )
    devices = session.execute(
        delete(KnownDevice).where(KnownDevice.last_seen_at < now - timedelta(days=device_days))
    )
    counters = session.execute(delete(RateCounter).where(RateCounter.window_start < now - day))
    tokens = session.execute(
        delete(PasswordResetToken).where(PasswordResetToken.expires_at < now - day)
    )
    ended = session.execute(
        delete(WebSession).where(
            (WebSession.expires_at < now - day) | (WebSession.revoked_at < now - day)
        )
    )
    return sum(int(r.rowcount) for r in (counters, tokens, ended, devices, reservations))  # type: ignore[attr-defined,misc]


def login_keys(email: str, ip: str) -> tuple[str, str]:
    """Throttle keys for an account and an address. The account's is its email normalised as
    sign-up normalises it: each spelling that reaches the account (fullwidth letters, a
    differently cased domain) shares one counter."""
    try:
        canonical = normalise_email(email)
    except InvalidEmail:
        canonical = email.strip().lower()
    return f"login:account:{sha256(canonical)}", f"login:ip:{ip}"


def signup_key(ip: str) -> str:
    return f"signup:ip:{ip}"


# --- who may sign in -------------------------------------------------------------------------


def check_can_sign_in(user: User) -> None:
    if user.status == "deleted":
        raise Unauthorized("Email or password is wrong.", code="invalid_credentials")
    if user.status == "banned":
        raise Forbidden(
            "This account has been banned for breaking the terms of service. Contact the "
            "operator of this site if you believe this is a mistake.",
            code="account_banned",
        )
    if user.locked_at is not None:
        raise Forbidden(
            "This account is locked because someone reported a sign-in they did not make. "
            "Use the password reset link we emailed you (or ask for a new one) to unlock it.",
            code="account_locked",
        )


def reauthenticate(user: User, password: str, code: str | None = None) -> None:
    """Before changing email, password or 2FA: the current password again (and, with 2FA on,
    a current code for turning it off is checked by the caller)."""
    if not passwords.verify_password(user.password_hash, password or ""):
        raise ReauthRequired("Your current password is wrong. Enter it again to confirm.")


# --- revoking access -------------------------------------------------------------------------


def revoke_sessions(
    session: Session, user_id: int, *, now: datetime, keep: int | None = None
) -> int:
    stmt = update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(WebSession.id != keep)
    result = session.execute(stmt.values(revoked_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def revoke_api_keys(session: Session, user_id: int, *, now: datetime) -> int:
    """Every key of the account stops working now; returns how many were in use."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def active_sessions(session: Session, user: User, now: datetime) -> Sequence[WebSession]:
    """The sessions that still sign a browser in (see service.resolve_session)."""
    stmt = (
        select(WebSession)
        .where(
            WebSession.user_id == user.id,
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > now,
            WebSession.password_fingerprint == password_fingerprint(user),
        )
        .order_by(WebSession.last_seen_at.desc())
    )
    return session.scalars(stmt).all()


def revoke_session(session: Session, user: User, session_id: int, *, now: datetime) -> WebSession:
    web = session.get(WebSession, session_id)
    if web is None or web.user_id != user.id:
        raise NotFound("No such session.")
    if web.revoked_at is None:
        web.revoked_at = now
    session.flush()
    return web


# --- password reset --------------------------------------------------------------------------


def create_reset_token(session: Session, user: User, *, now: datetime, minutes: int) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=sha256(token),
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
            credential_fingerprint=credential_fingerprint(user),
        )
    )
    session.flush()
    return token


def _bad_reset_link() -> DomainError:
    return DomainError(
        "This password reset link is invalid, expired or already used. Ask for a new one.",
        code="invalid_token",
    )


def check_reset_token(session: Session, token: str, *, now: datetime) -> PasswordResetToken:
    """The unused, unexpired token of an account that may still sign in and whose password,
    address and lock are what they were when the link was mailed; using it up is
    consume_reset_token's job (the reset page checks first, so a dead link shows no form)."""
    row = session.scalar(
        select(PasswordResetToken).where(PasswordResetToken.token_hash == sha256(token.strip()))
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise _bad_reset_link()
    user = repo.user_by_id(session, row.user_id)
    if user is None or user.status in ("deleted", "banned"):
        raise _bad_reset_link()
    if not secrets.compare_digest(row.credential_fingerprint, credential_fingerprint(user)):
        raise _bad_reset_link()
    return row


def consume_reset_token(session: Session, token: str, *, now: datetime) -> User:
    """Single use, enforced by a conditional UPDATE: two concurrent uses cannot both win. The
    account's other links die when the new password is set (credential_fingerprint)."""
    row = check_reset_token(session, token, now=now)
    result = session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.id == row.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise _bad_reset_link()
    user = repo.user_by_id(session, row.user_id)
    assert user is not None  # check_reset_token found it
    return user


def set_password(
    session: Session, user: User, new_password: str, *, now: datetime, keep_session: int | None
) -> None:
    """Change the password; every other session ends (and with a reset, every session), and
    every reset or email-change link sent before stops working (credential_fingerprint).
    Sessions are bound to the password (service.password_fingerprint), so the others would
    die anyway; revoking them records when, and takes them off the list of sessions."""
    passwords.check_policy(new_password, email=user.email)
    user.password_hash = passwords.hash_password(new_password)
    user.password_changed_at = now
    revoke_sessions(session, user.id, now=now, keep=keep_session)
    if keep_session is not None:
        session.execute(
            update(WebSession)
            .where(WebSession.id == keep_session)
            .values(password_fingerprint=password_fingerprint(user))
        )
    session.flush()


# --- signed links ----------------------------------------------------------------------------


def not_me_token(secret: str, user: User, *, now: datetime, restore: str | None = None) -> str:
    """A "this wasn't me" link in a notice sent `now`. `restore`: the address an email change
    moved the account away from, mailed there, so that reporting the change also moves the
    account back."""
    data: dict[str, object] = {"u": user.id, "t": int(now.timestamp())}
    if restore is not None:
        data["r"] = restore
    return URLSafeTimedSerializer(secret, salt=NOT_ME_SALT).dumps(data)


def _not_me_data(secret: str, token: str) -> dict[str, object]:
    try:
        data = URLSafeTimedSerializer(secret, salt=NOT_ME_SALT).loads(token, max_age=NOT_ME_MAX_AGE)
    except BadSignature:
        raise DomainError(
            "This link is invalid or older than 14 days. Sign in and review your account, "
            "or reset your password.",
            code="invalid_token",
        ) from None
    return dict(data)


def not_me_restore(secret: str, token: str) -> str | None:
    """The address a valid "this wasn't me" link would move the account back to, if any."""
    try:
        restore = _not_me_data(secret, token).get("r")
    except DomainError:
        return None
    return str(restore) if restore is not None else None


@dataclass(frozen=True)
class Report:
    """A "this wasn't me" link, read: the account, when the notice that carried it was sent
    (None for links made before notices said so) and the address to move back to, if any."""

    user: User
    sent_at: datetime | None
    restore: str | None


def not_me_report(session: Session, secret: str, token: str) -> Report:
    data = _not_me_data(secret, token)
    user = repo.user_by_id(session, int(str(data["u"])))
    if user is None or user.status == "deleted":
        raise DomainError("This link no longer matches an account.", code="invalid_token")
    sent, restore = data.get("t"), data.get("r")
    return Report(
        user=user,
        sent_at=datetime.fromtimestamp(int(str(sent)), UTC) if sent is not None else None,
        restore=str(restore) if restore is not None else None,
    )


def restore_email(session: Session, user: User, address: str, *, now: datetime) -> bool:
    """Move the account back to an address an email change took it from (the report came
    from that mailbox, which proves it), which is then no longer reserved for it. False when
    another account holds it (only a confirmed one can: flows.not_me erases an unconfirmed
    one first, and none could take it while it was reserved)."""
    if user.email != address:
        if repo.user_by_email(session, address) is not None:
            return False
        user.email = address
        user.email_verified_at = now
    repo.release_address(session, user.id, address)
    session.flush()
    return True


@dataclass(frozen=True)
class Revoked:
    """What a report of unauthorized use stopped, for the owner's email."""

    sessions: int
    api_keys: int
    two_factor_off: bool
    recovery_codes_deleted: bool


def lock_account(
    session: Session, user: User, *, now: datetime, reported_since: datetime | None
) -> Revoked:
    """'This wasn't me': nobody can sign in until the password is reset; every session and
    API key stops working now, every reset or email-change link sent before dies (the lock
    changes credential_fingerprint), and the known devices are forgotten, so a sign-in from
    any of them is announced again. Two-factor authentication turned on since the reported
    notice was sent is turned off: it may be the intruder's app, which would keep the owner
    out after the reset; the owner's own, turned on before, stays, less any recovery codes
    made since (whoever made them has them)."""
    user.locked_at = now
    intruders_2fa = (
        reported_since is not None
        and user.totp_enabled_at is not None
        and user.totp_enabled_at >= reported_since
    )
    codes_deleted = 0
    if intruders_2fa:
        disable_totp(session, user)
    elif reported_since is not None:
        codes_deleted = repo.delete_recovery_codes_since(session, user.id, reported_since)
    revoked = Revoked(
        sessions=revoke_sessions(session, user.id, now=now),
        api_keys=revoke_api_keys(session, user.id, now=now),
        two_factor_off=intruders_2fa,
        recovery_codes_deleted=codes_deleted > 0,
    )
    session.execute(delete(KnownDevice).where(KnownDevice.user_id == user.id))
    session.flush()
    return revoked


def pending_2fa_token(secret: str, user: User) -> str:
    return URLSafeTimedSerializer(secret, salt=PENDING_2FA_SALT).dumps(
        {"u": user.id, "h": sha256(user.password_hash)[:16]}
    )


def pending_2fa_user(session: Session, secret: str, token: str) -> User:
    expired = Unauthorized(
        "The sign-in took too long. Enter your email and password again.",
        code="sign_in_expired",
    )
    try:
        data = URLSafeTimedSerializer(secret, salt=PENDING_2FA_SALT).loads(
            token, max_age=PENDING_2FA_MAX_AGE
        )
    except BadSignature:
        raise expired from None
    user = repo.user_by_id(session, int(data["u"]))
    if user is None or sha256(user.password_hash)[:16] != data["h"]:
        raise expired
    return user


def email_change_token(secret: str, user: User, new_email: str) -> str:
    """Mailed to the new address; dies when the password, address or lock changes first."""
    return URLSafeTimedSerializer(secret, salt=EMAIL_CHANGE_SALT).dumps(
        {"u": user.id, "old": user.email, "new": new_email, "f": credential_fingerprint(user)}
    )


def confirm_email_change(
    session: Session, secret: str, token: str, *, now: datetime
) -> tuple[User, str]:
    """Returns the user (now with the new address) and the old address."""
    invalid = DomainError(
        "This confirmation link is invalid, expired or already used.", code="invalid_token"
    )
    try:
        data = URLSafeTimedSerializer(secret, salt=EMAIL_CHANGE_SALT).loads(
            token, max_age=EMAIL_CHANGE_MAX_AGE
        )
    except BadSignature:
        raise invalid from None
    user = repo.user_by_id(session, int(data["u"]))
    if user is None or user.status == "deleted":
        raise invalid
    if user.email != data["old"] or credential_fingerprint(user) != data.get("f"):
        raise invalid
    check_can_sign_in(user)  # a banned account changes nothing
    new, old = str(data["new"]), str(data["old"])
    if repo.user_by_email(session, new) is not None or reserved_for_another(
        session, new, user.id, now=now
    ):
        raise DomainError(
            "Another account already uses this address.", code="email_taken", status_code=409
        )
    user.email = new
    user.email_verified_at = now
    repo.release_address(session, user.id, new)
    repo.reserve_address(
        session, user.id, old, expires_at=now + timedelta(seconds=NOT_ME_MAX_AGE), now=now
    )
    session.flush()
    return user, old


def reserved_for_another(
    session: Session, address: str, user_id: int | None, *, now: datetime
) -> bool:
    """Whether `address` is kept for another account's undo of an email change (sign-up and
    email changes treat it as taken, without saying so: see flows)."""
    reservation = repo.reservation_of(session, address, now=now)
    return reservation is not None and reservation.user_id != user_id


# --- TOTP 2FA --------------------------------------------------------------------------------


def _seal_totp(secret_key: str, user: User, seed: str) -> str:
    return sealing.seal(secret_key, "totp", str(user.id), seed)


def _totp_seed(secret_key: str, user: User) -> str | None:
    if user.totp_secret is None:
        return None
    return sealing.unseal(secret_key, "totp", str(user.id), user.totp_secret)


def begin_totp(session: Session, user: User, *, secret_key: str) -> str:
    """A fresh secret, not yet in force until a first code confirms it."""
    if user.has_2fa:
        raise DomainError(
            "Two-factor authentication is already on. Turn it off first to set it up again.",
            code="totp_already_enabled",
            status_code=409,
        )
    seed = pyotp.random_base32()
    user.totp_secret = _seal_totp(secret_key, user, seed)
    user.totp_last_step = None
    session.flush()
    return seed


def pending_totp(user: User, *, secret_key: str) -> str | None:
    """The secret of a setup that no code has confirmed yet (None once 2FA is on, or before
    any setup): shown again after a mistyped code, so the app's entry keeps working."""
    return None if user.has_2fa else _totp_seed(secret_key, user)


def totp_uri(user: User, seed: str) -> str:
    return pyotp.TOTP(seed, interval=TOTP_PERIOD).provisioning_uri(
        name=user.email, issuer_name=TOTP_ISSUER
    )


def _match_totp(user: User, code: str, now: datetime, secret_key: str) -> int | None:
    """The time step a code belongs to (now ±1 step for clock drift), if later than the last
    accepted one: each code works once."""
    seed = _totp_seed(secret_key, user)
    if seed is None:
        return None
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(seed, interval=TOTP_PERIOD)
    current = int(now.timestamp()) // TOTP_PERIOD
    for step in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), digits):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return None
            return step
    return None


def enable_totp(
    session: Session, user: User, code: str, *, now: datetime, secret_key: str
) -> list[str]:
    if user.totp_secret is None:
        raise DomainError("Start the two-factor setup first.", code="totp_not_started")
    if user.has_2fa:
        raise DomainError(
            "Two-factor authentication is already on.", code="totp_already_enabled", status_code=409
        )
    step = _match_totp(user, code, now, secret_key)
    if step is None:
        raise InvalidCode(
            "That code is not right. Check your device's clock and enter the current code."
        )
    user.totp_last_step = step
    user.totp_enabled_at = now
    session.flush()
    return new_recovery_codes(session, user, now=now)


def disable_totp(session: Session, user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.flush()


def new_recovery_codes(session: Session, user: User, *, now: datetime) -> list[str]:
    """Ten single-use codes (60 random bits each, stored as argon2id hashes)."""
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(alphabet) for _ in range(12))
        code = f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
        codes.append(code)
        session.add(
            RecoveryCode(user_id=user.id, code_hash=passwords.hash_password(raw), created_at=now)
        )
    session.flush()
    return codes


def recovery_codes_left(session: Session, user: User) -> int:
    rows = session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).all()
    return len(rows)


def verify_second_factor(
    session: Session, user: User, code: str, *, now: datetime, secret_key: str
) -> str:
    """A current TOTP code or an unused recovery code; returns which one was used."""
    step = _match_totp(user, code, now, secret_key)
    if step is not None:
        # Conditional update: the same code presented twice at once is accepted only once.
        result = session.execute(
            update(User)
            .where(
                User.id == user.id,
                (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
            )
            .values(totp_last_step=step)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            session.refresh(user)
            return "totp"
    raw = "".join(c for c in code.lower() if c.isalnum())
    if len(raw) == 12:
        for row in session.scalars(
            select(RecoveryCode).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        ).all():
            if passwords.verify_password(row.code_hash, raw):
                result = session.execute(
                    update(RecoveryCode)
                    .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                    .values(used_at=now)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    return "recovery"
    raise InvalidCode(
        "That code is not right or was already used. Enter the current code from your app, "
        "or an unused recovery code."
    )


# --- devices ---------------------------------------------------------------------------------


def remember_device(
    session: Session, user: User, *, user_agent: str, ip: str, now: datetime
) -> tuple[bool, bool]:
    """Record this (user agent, IP). Returns (new device, signed in before): the account's
    first sign-in is not announced, any later one from a device not known (or forgotten) is."""
    signed_in_before = user.first_signed_in_at is not None
    if not signed_in_before:
        user.first_signed_in_at = now
    fingerprint = sha256(f"{user_agent}\n{ip}")
    known = session.scalars(select(KnownDevice).where(KnownDevice.user_id == user.id)).all()
    for device in known:
        if device.fingerprint == fingerprint:
            device.last_seen_at = now
            session.flush()
            return False, signed_in_before
    session.add(
        KnownDevice(
            user_id=user.id,
            fingerprint=fingerprint,
            user_agent=user_agent[:400],
            ip=ip[:64],
            first_seen_at=now,
            last_seen_at=now,
        )
    )
    session.flush()
    return True, signed_in_before
