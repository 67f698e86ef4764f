"""Security emails: a sign-in from a new device, credential changes, password reset. Each
carries a "this wasn't me" link that locks the account and starts a reset."""

from __future__ import annotations

from datetime import datetime

from removeany.infra.mail import Mailer

FOOTER = (
    "\n\nIf this wasn't you, open this link now. It signs everyone out, revokes your API keys, "
    "locks the account and sends you a password reset link:\n\n{not_me}\n"
)


def not_me_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/account/not-me?token={token}"


def new_device(
    mailer: Mailer, to: str, *, when: datetime, user_agent: str, ip: str, not_me: str
) -> None:
    mailer.send(
        to,
        "New sign-in to your RemoveAny account",
        "Your RemoveAny account was just signed in to from a device or network we have not "
        "seen before.\n\n"
        f"When: {when:%Y-%m-%d %H:%M} UTC\nBrowser: {user_agent or 'unknown'}\n"
        f"IP address: {ip or 'unknown'}\n\nIf this was you, you can ignore this message."
        + FOOTER.format(not_me=not_me),
    )


def credential_changed(mailer: Mailer, to: str, *, what: str, when: datetime, not_me: str) -> None:
    mailer.send(
        to,
        f"Your RemoveAny {what} was changed",
        f"The {what} of your RemoveAny account was changed on {when:%Y-%m-%d %H:%M} UTC.\n\n"
        "If you made this change, you can ignore this message." + FOOTER.format(not_me=not_me),
    )


def password_reset(mailer: Mailer, to: str, *, link: str, minutes: int, locked: bool) -> None:
    intro = (
        "Your account is locked because a sign-in was reported as not yours. Choose a new "
        "password to unlock it.\n\n"
        if locked
        else "Someone (hopefully you) asked to reset the password of your RemoveAny account.\n\n"
    )
    mailer.send(
        to,
        "Reset your RemoveAny password",
        intro + f"Open this link to choose a new password:\n\n{link}\n\n"
        f"The link works once and expires in {minutes} minutes. If you did not ask for this, "
        "ignore this message: your password stays as it is.\n",
    )


def email_change(mailer: Mailer, to: str, *, link: str) -> None:
    mailer.send(
        to,
        "Confirm your new RemoveAny email address",
        f"Open this link to use this address for your RemoveAny account:\n\n{link}\n\n"
        "The link is valid for 24 hours. If you did not ask for this, ignore this message.\n",
    )


def account_locked(mailer: Mailer, to: str) -> None:
    mailer.send(
        to,
        "Your RemoveAny account is locked",
        "You reported activity on your account that was not yours. We signed out every "
        "session, revoked every API key and locked the account. A separate email has a link "
        "to choose a new password, which unlocks it.\n",
    )


def api_key_created(mailer: Mailer, to: str, *, name: str, when: datetime, not_me: str) -> None:
    mailer.send(
        to,
        "A new RemoveAny API key was created",
        f'An API key named "{name}" was created for your RemoveAny account on '
        f"{when:%Y-%m-%d %H:%M} UTC. Requests made with it spend your credits.\n\n"
        "If you created it, you can ignore this message." + FOOTER.format(not_me=not_me),
    )
