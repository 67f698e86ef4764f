"""Security emails: a sign-in from a new device, credential changes, password reset. Each
carries a "this wasn't me" link that locks the account and starts a reset; the one telling an
old address that the account moved away from it also moves the account back.

Each email is written in the transaction of the change it tells about (`removeany.mail`), so
it goes out once that change is committed, and never for one that rolled back. It is in the
user's language (`User.locale`; None: the language of the request that causes it, see
`removeany.i18n`, or English outside a request)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.accounts.security import Revoked
from removeany.accounts.service import shown_key_name
from removeany.i18n import N_, t, tn, use
from removeany.mail import service as mail

# What `credential_changed` names, as its callers pass it.
WHAT = {
    "password": N_("password"),
    "email address": N_("email address"),
    "two-factor authentication": N_("two-factor authentication"),
}


def _when(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


def _footer(not_me: str) -> str:
    return "\n\n" + t(
        "If this wasn't you, open this link now. It signs everyone out, revokes your API keys, "
        "locks the account and sends you a password reset link:\n\n{not_me}\n",
        not_me=not_me,
    )


def not_me_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/account/not-me?token={token}"


def _write(
    session: Session, user: User, subject: str, body: str, *, now: datetime, to: str | None = None
) -> None:
    """An email about `user`'s account, to their address unless `to` names another."""
    mail.write(session, to=to or user.email, subject=subject, body=body, user_id=user.id, now=now)


def new_device(
    session: Session, user: User, *, when: datetime, user_agent: str, ip: str, not_me: str
) -> None:
    with use(user.locale):
        _write(
            session,
            user,
            t("New sign-in to your RemoveAny account"),
            t(
                "Your RemoveAny account was just signed in to from a device or network we have "
                "not seen before."
            )
            + "\n\n"
            + t(
                "When: {when}\nBrowser: {browser}\nIP address: {ip}",
                when=_when(when),
                browser=user_agent or t("unknown"),
                ip=ip or t("unknown"),
            )
            + "\n\n"
            + t("If this was you, you can ignore this message.")
            + _footer(not_me),
            now=when,
        )


def credential_changed(
    session: Session,
    user: User,
    *,
    what: str,
    when: datetime,
    not_me: str,
    done: str = "",
) -> None:
    """`done`: a paragraph saying what the change also did (password_changed_done and
    password_reset_done write it in the user's language)."""
    with use(user.locale):
        name = t(WHAT.get(what, what))
        _write(
            session,
            user,
            t("Your RemoveAny {what} was changed", what=name),
            t(
                "The {what} of your RemoveAny account was changed on {when}.",
                what=name,
                when=_when(when),
            )
            + ("\n\n" + done if done else "")
            + "\n\n"
            + t("If you made this change, you can ignore this message.")
            + _footer(not_me),
            now=when,
        )


def password_changed_done(user: User, api_keys: str) -> str:
    """What changing the password (with the current one) also did, and did not do; in the
    user's language, for credential_changed's `done`."""
    with use(user.locale):
        return t(
            "Your other browsers were signed out and password reset links sent before now no "
            "longer work. Your API keys still work: check them, and revoke any you do not "
            "recognise, at {link}",
            link=api_keys,
        )


def password_reset_done(user: User, api_keys_revoked: int, api_keys: str) -> str:
    """What a reset by emailed link also did: it is how someone whose password is known to
    someone else gets the account back, so nothing made with the old password survives it.
    In the user's language, for credential_changed's `done`."""
    with use(user.locale):
        if not api_keys_revoked:
            return t("Every browser was signed out.")
        return tn(
            "Every browser was signed out and 1 API key was revoked. Make a new one at {link}",
            "Every browser was signed out and {n} API keys were revoked. Make new ones at {link}",
            api_keys_revoked,
            link=api_keys,
        )


def password_reset(session: Session, user: User, *, link: str, minutes: int, now: datetime) -> None:
    with use(user.locale):
        intro = (
            t(
                "Your account is locked because a sign-in was reported as not yours. Choose a "
                "new password to unlock it."
            )
            if user.locked_at is not None
            else t("Someone (hopefully you) asked to reset the password of your RemoveAny account.")
        )
        _write(
            session,
            user,
            t("Reset your RemoveAny password"),
            intro
            + "\n\n"
            + t("Open this link to choose a new password:\n\n{link}", link=link)
            + "\n\n"
            + t(
                "The link works once and expires in {minutes} minutes. If you did not ask for "
                "this, ignore this message: your password stays as it is.",
                minutes=minutes,
            )
            + "\n",
            now=now,
        )


def email_change(session: Session, user: User, *, to: str, link: str, now: datetime) -> None:
    """To the new address `to`, which is not the account's yet."""
    with use(user.locale):
        _write(
            session,
            user,
            t("Confirm your new RemoveAny email address"),
            t(
                "Open this link to use this address for your RemoveAny account:\n\n{link}",
                link=link,
            )
            + "\n\n"
            + t("The link is valid for 24 hours. If you did not ask for this, ignore this message.")
            + "\n",
            now=now,
            to=to,
        )


def email_change_requested(
    session: Session, user: User, *, new: str, when: datetime, not_me: str
) -> None:
    """Told to the current address as soon as a move is asked for, before it can happen."""
    with use(user.locale):
        _write(
            session,
            user,
            t("Someone asked to change your RemoveAny email address"),
            t(
                "On {when} someone signed in to your RemoveAny account asked to move it to "
                "{new}. The change happens only if the link we sent there is opened.",
                when=_when(when),
                new=new,
            )
            + "\n\n"
            + t("If you asked for this, you can ignore this message.")
            + "\n\n"
            + t(
                "If you did not, open this link now. It cancels the change, signs everyone "
                "out, revokes your API keys, locks the account and sends you a password "
                "reset link:\n\n{not_me}\n",
                not_me=not_me,
            ),
            now=when,
        )


def email_changed(session: Session, user: User, *, old: str, when: datetime, undo: str) -> None:
    """Told to the old address `old`, with the one link that can move the account back to it."""
    with use(user.locale):
        name = t(WHAT["email address"])
        _write(
            session,
            user,
            t("Your RemoveAny {what} was changed", what=name),
            t(
                "On {when} your RemoveAny account was moved from this address to {new}. "
                "Emails about it now go there.",
                when=_when(when),
                new=user.email,
            )
            + "\n\n"
            + t("If you made this change, you can ignore this message.")
            + "\n\n"
            + t(
                "If you did not, open this link within 14 days. It moves the account back to "
                "this address, signs everyone out, revokes your API keys, locks the account "
                "and sends you a password reset link here:\n\n{undo}\n",
                undo=undo,
            ),
            now=when,
            to=old,
        )


def account_locked(
    session: Session,
    user: User,
    *,
    revoked: Revoked,
    restored_from: str | None,
    security_page: str,
    now: datetime,
) -> None:
    """Exactly what a report of unauthorized use did, and what the owner should do next."""
    with use(user.locale):
        done = [
            tn(
                "1 browser session was signed out.",
                "{n} browser sessions were signed out.",
                revoked.sessions,
            ),
            tn("1 API key was revoked.", "{n} API keys were revoked.", revoked.api_keys),
            t("Password reset and email change links sent before now no longer work."),
            t("Nobody can sign in until a new password is chosen."),
        ]
        if revoked.recovery_codes_deleted:
            done.append(
                t(
                    "Recovery codes made after the activity you reported were deleted: make "
                    "new ones once you are signed in."
                )
            )
        if revoked.two_factor_off:
            done.append(
                t(
                    "Two-factor authentication was turned off: it was turned on after the "
                    "activity you reported, so it may use someone else's app. Turn it on again "
                    "with your own once you are signed in."
                )
            )
        if restored_from is not None:
            done.insert(
                0,
                t(
                    "The account uses this address again, instead of {address}.",
                    address=restored_from,
                ),
            )
        _write(
            session,
            user,
            t("Your RemoveAny account is locked"),
            t("You reported activity on your account that was not yours. We did this:")
            + "\n\n"
            + "".join(f"- {line}\n" for line in done)
            + "\n"
            + t("What to do next:")
            + "\n\n"
            + t(
                "1. Choose a new password with the link in the separate email we just sent. "
                "Use one you do not use anywhere else."
            )
            + "\n"
            + t(
                "2. Change the password of this mailbox too: anyone who can read it can reset "
                "yours."
            )
            + "\n"
            + t(
                "3. Sign in, turn on two-factor authentication, and check your sessions and "
                "API keys here:\n\n{link}",
                link=security_page,
            )
            + "\n",
            now=now,
        )


def api_key_created(
    session: Session, user: User, *, name: str, when: datetime, not_me: str
) -> None:
    with use(user.locale):
        _write(
            session,
            user,
            t("A new RemoveAny API key was created"),
            t(
                'An API key named "{name}" was created for your RemoveAny account on {when}. '
                "Requests made with it spend your credits.",
                name=shown_key_name(name),
                when=_when(when),
            )
            + "\n\n"
            + t("If you created it, you can ignore this message.")
            + _footer(not_me),
            now=when,
        )


def signup_attempted(
    session: Session, user: User, *, sign_in: str, reset: str, now: datetime
) -> None:
    """Sign-up answers the same for an address that has an account: its owner learns here."""
    with use(user.locale):
        _write(
            session,
            user,
            t("Someone tried to sign up with your email address"),
            t(
                "Someone (hopefully you) tried to create a RemoveAny account with this email "
                "address. It already has an account, so no new one was made."
            )
            + "\n\n"
            + t("Sign in here:\n\n{link}", link=sign_in)
            + "\n\n"
            + t("Forgot your password? Choose a new one here:\n\n{link}", link=reset)
            + "\n\n"
            + t("If it wasn't you, ignore this message: nothing changed on your account.")
            + "\n",
            now=now,
        )


def signup_reserved(
    session: Session, user: User, *, to: str, until: datetime, now: datetime
) -> None:
    """Sign-up answers the same for an address kept for an email change's undo: the mailbox
    learns here why no account was made (in the language of the account that moved away)."""
    with use(user.locale):
        _write(
            session,
            user,
            t("Someone tried to sign up with your email address"),
            t(
                "Someone (hopefully you) tried to create a RemoveAny account with this email "
                "address. A RemoveAny account was recently moved away from it, so no new "
                "account was made: until {until} the address stays reserved for that account, "
                "which the link in our email about the change can move back here.",
                until=_when(until),
            )
            + "\n\n"
            + t("You can sign up with this address after that date.")
            + "\n",
            now=now,
            to=to,
        )
