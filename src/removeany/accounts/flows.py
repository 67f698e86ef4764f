"""Security flows that span several transactions (so a failed attempt is still counted) and
send mail: sign-in with throttling, 2FA and new-device alerts; password reset; "this wasn't
me"; credential changes. Shared by the JSON API and the web pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from removeany.accounts import notify, passwords, security
from removeany.accounts import repository as repo
from removeany.accounts import service as accounts
from removeany.accounts.models import User, WebSession
from removeany.context import Context
from removeany.errors import DomainError, Unauthorized
from removeany.jobs import service as jobs
from removeany.legal import service as legal
from removeany.privacy import service as privacy


@dataclass
class SignedIn:
    token: str
    csrf_token: str
    user_id: int
    email: str
    new_device: bool


def _window(ctx: Context) -> timedelta:
    return timedelta(seconds=ctx.settings.login_window_seconds)


def _base(ctx: Context) -> str:
    return ctx.settings.base_url.rstrip("/")


def not_me_link(ctx: Context, user: User, *, restore: str | None = None) -> str:
    return notify.not_me_link(
        _base(ctx), security.not_me_token(ctx.secret_key, user, now=ctx.now(), restore=restore)
    )


def _api_keys_page(ctx: Context) -> str:
    return f"{_base(ctx)}/account/api-keys"


def _count_failure(ctx: Context, email: str, ip: str) -> None:
    account_key, ip_key = security.login_keys(email, ip)
    with ctx.db.transaction() as session:
        security.throttle_hit(session, account_key, window=_window(ctx), now=ctx.now())
        security.throttle_hit(session, ip_key, window=_window(ctx), now=ctx.now())


def _check_throttle(ctx: Context, email: str, ip: str) -> None:
    account_key, ip_key = security.login_keys(email, ip)
    s = ctx.settings
    with ctx.db.transaction() as session:
        for key, limit in (
            (ip_key, s.login_failures_per_ip),
            (account_key, s.login_failures_per_account),
        ):
            security.throttle_check(
                session,
                key,
                limit=limit,
                window=_window(ctx),
                now=ctx.now(),
                what="failed sign-in attempts",
            )


def sign_in(
    ctx: Context,
    *,
    email: str,
    password: str,
    user_agent: str,
    ip: str,
    totp_code: str | None = None,
) -> SignedIn:
    """Password (+ a second factor when 2FA is on) → a new browser session. Failed passwords
    and codes count against the account and the IP; a new device gets an email."""
    _check_throttle(ctx, email, ip)
    try:
        with ctx.db.transaction() as session:
            user = accounts.authenticate(session, email, password)
            security.check_can_sign_in(user)
            if user.has_2fa:
                if not totp_code:
                    raise security.TwoFactorRequired(
                        security.pending_2fa_token(ctx.secret_key, user)
                    )
                security.verify_second_factor(
                    session, user, totp_code, now=ctx.now(), secret_key=ctx.secret_key
                )
            return _start(ctx, session, user, user_agent=user_agent, ip=ip)
    except (Unauthorized, security.InvalidCode) as exc:
        if exc.code in ("invalid_credentials", "invalid_totp"):
            _count_failure(ctx, email, ip)
        raise


def finish_two_factor(
    ctx: Context, *, pending: str, code: str, user_agent: str, ip: str
) -> SignedIn:
    """The second step of a web sign-in: the password was right, now the code."""
    with ctx.db.transaction() as session:
        user = security.pending_2fa_user(session, ctx.secret_key, pending)
        email = user.email
    _check_throttle(ctx, email, ip)
    try:
        with ctx.db.transaction() as session:
            user = security.pending_2fa_user(session, ctx.secret_key, pending)
            security.check_can_sign_in(user)
            security.verify_second_factor(
                session, user, code, now=ctx.now(), secret_key=ctx.secret_key
            )
            return _start(ctx, session, user, user_agent=user_agent, ip=ip)
    except security.InvalidCode:
        _count_failure(ctx, email, ip)
        raise


def _start(ctx: Context, session: Session, user: User, *, user_agent: str, ip: str) -> SignedIn:
    now = ctx.now()
    token, web = accounts.start_session(
        session, user, now=now, days=ctx.settings.session_days, user_agent=user_agent, ip=ip
    )
    new, signed_in_before = security.remember_device(
        session, user, user_agent=user_agent, ip=ip, now=now
    )
    security.throttle_clear(session, security.login_keys(user.email, ip)[0])
    if new and signed_in_before:
        notify.new_device(
            session,
            user,
            when=now,
            user_agent=user_agent,
            ip=ip,
            not_me=not_me_link(ctx, user),
        )
    return SignedIn(token, web.csrf_token, user.id, user.email, new and signed_in_before)


def check_signup_allowed(ctx: Context, ip: str) -> None:
    with ctx.db.transaction() as session:
        security.throttle_check(
            session,
            security.signup_key(ip),
            limit=ctx.settings.signups_per_ip,
            window=timedelta(seconds=ctx.settings.signup_window_seconds),
            now=ctx.now(),
            what="sign-ups from your network",
        )


def count_signup(ctx: Context, session: Session, ip: str) -> None:
    security.throttle_hit(
        session,
        security.signup_key(ip),
        window=timedelta(seconds=ctx.settings.signup_window_seconds),
        now=ctx.now(),
    )


def sign_up(
    ctx: Context,
    *,
    email: str,
    password: str,
    ip: str,
    user_agent: str,
    accept_terms: bool,
    locale: str | None = None,
) -> str:
    """A new account and its confirmation email; returns the address as stored. An address
    that already has an account gets the same answer (same throttle, same work), and its
    owner an email with links to sign in or reset the password: sign-up never tells anyone
    whether an address has an account here."""
    check_signup_allowed(ctx, ip)
    with ctx.db.transaction() as session:
        address = accounts.normalise_email(email)
        passwords.check_policy(password, email=address)
        existing = repo.user_by_email(session, address)
        reserved = repo.reservation_of(session, address, now=ctx.now())
        if existing is not None or reserved is not None:
            passwords.hash_password(password)  # the time a new account takes, for nothing
            count_signup(ctx, session, ip)
            if existing is not None:
                _signup_attempted(ctx, session, existing)
            elif reserved is not None:
                _signup_reserved(ctx, session, address, reserved.user_id, reserved.expires_at)
            return address
        user = accounts.create_user(session, address, password, now=ctx.now(), locale=locale)
        count_signup(ctx, session, ip)
        if accept_terms:
            legal.accept(
                session,
                user,
                legal.current(session).version,
                now=ctx.now(),
                ip=ip,
                user_agent=user_agent,
            )
        accounts.send_verification(
            session, ctx.secret_key, ctx.settings.base_url, user, now=ctx.now()
        )
        return user.email


def _signup_reserved(
    ctx: Context, session: Session, address: str, user_id: int, until: datetime
) -> None:
    """Tell the mailbox why signing up with it made no account: it is kept for the undo of
    an email change (security.confirm_email_change). As few emails as _signup_attempted's."""
    window = timedelta(seconds=ctx.settings.signup_window_seconds)
    account_key = f"signup:account:{security.sha256(address)}"
    if security.throttle_hit(session, account_key, window=window, now=ctx.now()) > 3:
        return
    user = repo.user_by_id(session, user_id)
    assert user is not None  # reservations go with their account
    notify.signup_reserved(session, user, to=address, until=until, now=ctx.now())


def _signup_attempted(ctx: Context, session: Session, user: User) -> None:
    """Tell an account's owner that someone signed up with their address, or send an
    unconfirmed account's confirmation link again (most likely its owner lost the first).
    At most a few emails per address per window, whoever asks: no mail bombing; none to a
    banned account."""
    if user.status == "banned":
        return
    window = timedelta(seconds=ctx.settings.signup_window_seconds)
    account_key = f"signup:account:{security.sha256(user.email)}"
    if security.throttle_hit(session, account_key, window=window, now=ctx.now()) > 3:
        return
    if not user.is_verified:
        accounts.send_verification(
            session, ctx.secret_key, ctx.settings.base_url, user, now=ctx.now()
        )
        return
    notify.signup_attempted(
        session,
        user,
        sign_in=f"{_base(ctx)}/login",
        reset=f"{_base(ctx)}/forgot-password",
        now=ctx.now(),
    )


# --- password reset and "this wasn't me" -----------------------------------------------------


def request_password_reset(ctx: Context, email: str, *, ip: str) -> None:
    """Always answers the same way, whether or not the address has an account."""
    key = f"reset:ip:{ip}"
    window = timedelta(seconds=ctx.settings.signup_window_seconds)
    with ctx.db.transaction() as session:
        security.throttle_check(
            session,
            key,
            limit=ctx.settings.signups_per_ip,
            window=window,
            now=ctx.now(),
            what="password reset requests",
        )
        security.throttle_hit(session, key, window=window, now=ctx.now())
        try:
            address = accounts.normalise_email(email)
        except DomainError:
            return
        user = repo.user_by_email(session, address)
        if user is None or user.status in ("deleted", "banned"):
            return
        # At most a few emails per address per window, whoever asks: no mail bombing.
        account_key = f"reset:account:{security.sha256(address)}"
        hits = security.throttle_hit(session, account_key, window=window, now=ctx.now())
        if hits > 3:
            return
        _send_reset(ctx, session, user)


def _send_reset(ctx: Context, session: Session, user: User) -> None:
    minutes = ctx.settings.password_reset_minutes
    token = security.create_reset_token(session, user, now=ctx.now(), minutes=minutes)
    notify.password_reset(
        session,
        user,
        link=f"{_base(ctx)}/reset-password?token={token}",
        minutes=minutes,
        now=ctx.now(),
    )


def check_reset_link(ctx: Context, token: str) -> None:
    """Raises when a reset link can no longer be used, before anyone types a new password."""
    with ctx.db.transaction() as session:
        security.check_reset_token(session, token, now=ctx.now())


def reset_password(ctx: Context, token: str, new_password: str) -> User:
    """Single-use token → new password; unlocks a locked account, ends every session and
    revokes every API key (whoever knew the old password may have made one), and kills the
    account's other reset and email-change links (the password changed)."""
    with ctx.db.transaction() as session:
        user = security.consume_reset_token(session, token, now=ctx.now())
        passwords.check_policy(new_password, email=user.email)
        security.set_password(session, user, new_password, now=ctx.now(), keep_session=None)
        keys = security.revoke_api_keys(session, user.id, now=ctx.now())
        user.locked_at = None
        # A reset proves control of the mailbox.
        if user.email_verified_at is None:
            user.email_verified_at = ctx.now()
        notify.credential_changed(
            session,
            user,
            what="password",
            when=ctx.now(),
            not_me=not_me_link(ctx, user),
            done=notify.password_reset_done(user, keys, _api_keys_page(ctx)),
        )
        return user


@dataclass
class Reported:
    """What a report of unauthorized use did. `restored`: the address the account was moved
    back to; `restore_refused`: the link asked for that, but another account holds it now."""

    email: str
    restored: str | None
    restore_refused: bool


def not_me(ctx: Context, token: str) -> Reported:
    """Lock the account, revoke all sessions and keys, kill outstanding links, and email a
    reset link. A link mailed to an address an email change took the account from first moves
    the account back there, so the reset goes to the owner, not to whoever moved it."""
    with ctx.db.transaction() as session:
        report = security.not_me_report(session, ctx.secret_key, token)
        user, restore = report.user, report.restore
        moved_from = user.email
        if restore is not None:
            _evict_unconfirmed(ctx, session, restore, keep=user.id)
        restored = restore is not None and security.restore_email(
            session, user, restore, now=ctx.now()
        )
        revoked = security.lock_account(session, user, now=ctx.now(), reported_since=report.sent_at)
        jobs.cancel_queued_of(session, user.id, ctx.now())  # perhaps the intruder's work
        refused = restore is not None and not restored
        if not refused:
            notify.account_locked(
                session,
                user,
                revoked=revoked,
                restored_from=moved_from if restored and moved_from != user.email else None,
                security_page=f"{_base(ctx)}/account/security",
                now=ctx.now(),
            )
            # The reset goes to the address the owner holds, never to one an intruder set.
            _send_reset(ctx, session, user)
        return Reported(
            email=user.email, restored=user.email if restored else None, restore_refused=refused
        )


def _evict_unconfirmed(ctx: Context, session: Session, address: str, *, keep: int) -> None:
    """An undo proves the mailbox is its owner's; an account made with the address that
    never confirmed it (an intruder's squat, or one made before addresses were reserved) is
    erased, so the undo can move the owner's account back there."""
    holder = repo.user_by_email(session, address)
    if holder is None or holder.id == keep or holder.is_verified:
        return
    privacy.delete_files(ctx.storage, privacy.erase_account(session, holder, now=ctx.now()))


# --- changes that need the current password --------------------------------------------------


@contextmanager
def reauth_guard(ctx: Context, user_id: int) -> Iterator[None]:
    """Wrong current passwords (and codes) count like failed sign-ins, so a stolen session
    cannot guess the password through the forms that ask for it again."""
    with ctx.db.transaction() as session:
        user = repo.user_by_id(session, user_id)
        assert user is not None
        account_key = security.login_keys(user.email, "")[0]
        security.throttle_check(
            session,
            account_key,
            limit=ctx.settings.login_failures_per_account,
            window=_window(ctx),
            now=ctx.now(),
            what="wrong passwords or codes",
        )
    try:
        yield
    except (security.ReauthRequired, security.InvalidCode):
        with ctx.db.transaction() as session:
            security.throttle_hit(session, account_key, window=_window(ctx), now=ctx.now())
        raise


def change_password(
    ctx: Context, user_id: int, web: WebSession | None, current: str, new: str
) -> None:
    with reauth_guard(ctx, user_id), ctx.db.transaction() as session:
        user = repo.user_by_id(session, user_id)
        assert user is not None
        security.reauthenticate(user, current)
        security.set_password(
            session, user, new, now=ctx.now(), keep_session=web.id if web else None
        )
        notify.credential_changed(
            session,
            user,
            what="password",
            when=ctx.now(),
            not_me=not_me_link(ctx, user),
            done=notify.password_changed_done(user, _api_keys_page(ctx)),
        )


def request_email_change(ctx: Context, user_id: int, current: str, new_email: str) -> str:
    """Email a confirmation link to the new address, and tell the current one at once, with
    a link that stops it. An address another account uses gets the same answer and no email
    (confirming would fail anyway): this form must not tell a signed-in person which
    addresses have accounts here. So does an address kept for another account's undo of an
    email change."""
    with reauth_guard(ctx, user_id), ctx.db.transaction() as session:
        user = repo.user_by_id(session, user_id)
        assert user is not None
        security.reauthenticate(user, current)
        address = accounts.normalise_email(new_email)
        if address == user.email:
            raise DomainError(
                "This address is already yours. Enter a different one.",
                code="email_unchanged",
                status_code=409,
            )
        notify.email_change_requested(
            session, user, new=address, when=ctx.now(), not_me=not_me_link(ctx, user)
        )
        if repo.user_by_email(session, address) is not None or security.reserved_for_another(
            session, address, user.id, now=ctx.now()
        ):
            return address
        token = security.email_change_token(ctx.secret_key, user, address)
        notify.email_change(
            session,
            user,
            to=address,
            link=f"{_base(ctx)}/account/email/confirm?token={token}",
            now=ctx.now(),
        )
        return address


def confirm_email_change(ctx: Context, token: str) -> User:
    """The old address is told, with a link that moves the account back to it: whoever asked
    for the change knew the password, and may not be the owner."""
    with ctx.db.transaction() as session:
        user, old = security.confirm_email_change(session, ctx.secret_key, token, now=ctx.now())
        notify.email_changed(
            session,
            user,
            old=old,
            when=ctx.now(),
            undo=not_me_link(ctx, user, restore=old),
        )
        return user


def begin_totp(ctx: Context, user_id: int, current: str) -> tuple[str, str]:
    with reauth_guard(ctx, user_id), ctx.db.transaction() as session:
        user = repo.user_by_id(session, user_id)
        assert user is not None
        security.reauthenticate(user, current)
        seed = security.begin_totp(session, user, secret_key=ctx.secret_key)
        return seed, security.totp_uri(user, seed)


def pending_totp(ctx: Context, user_id: int) -> tuple[str, str] | None:
    """The secret (and its otpauth URI) of a two-factor setup not confirmed yet."""
    with ctx.db.transaction() as session:
        user = repo.user_by_id(session, user_id)
        assert user is not None
        seed = security.pending_totp(user, secret_key=ctx.secret_key)
        return (seed, security.totp_uri(user, seed)) if seed else None


def enable_totp(ctx: Context, user_id: int, code: str) -> list[str]:
    with ctx.db.transaction() as session:
        user = repo.user_by_id(session, user_id)
        assert user is not None
        codes = security.enable_totp(session, user, code, now=ctx.now(), secret_key=ctx.secret_key)
        notify.credential_changed(
            session,
            user,
            what="two-factor authentication",
            when=ctx.now(),
            not_me=not_me_link(ctx, user),
        )
        return codes


def disable_totp(ctx: Context, user_id: int, current: str, code: str) -> None:
    with reauth_guard(ctx, user_id), ctx.db.transaction() as session:
        user = repo.user_by_id(session, user_id)
        assert user is not None
        security.reauthenticate(user, current)
        if user.has_2fa:
            security.verify_second_factor(
                session, user, code, now=ctx.now(), secret_key=ctx.secret_key
            )
        security.disable_totp(session, user)
        notify.credential_changed(
            session,
            user,
            what="two-factor authentication",
            when=ctx.now(),
            not_me=not_me_link(ctx, user),
        )


def regenerate_recovery_codes(ctx: Context, user_id: int, current: str) -> list[str]:
    with reauth_guard(ctx, user_id), ctx.db.transaction() as session:
        user = repo.user_by_id(session, user_id)
        assert user is not None
        security.reauthenticate(user, current)
        if not user.has_2fa:
            raise DomainError("Turn on two-factor authentication first.", code="totp_not_enabled")
        return security.new_recovery_codes(session, user, now=ctx.now())
