"""Registration, email verification, sign-in sessions and API keys. Flushes, never commits."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from removeany.accounts import passwords
from removeany.accounts import repository as repo
from removeany.accounts.models import DEFAULT_KEY_NAME, ApiKey, User, WebSession
from removeany.credits import free
from removeany.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized
from removeany.i18n import t, use
from removeany.mail import service as mail

VERIFY_SALT = "verify-email"
VERIFY_MAX_AGE = 3 * 24 * 3600
API_KEY_PREFIX = "rak_"


class InvalidEmail(DomainError):
    code = "invalid_email"


class InvalidToken(DomainError):
    code = "invalid_token"


class EmailNotVerified(DomainError):
    status_code = 403
    code = "email_not_verified"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def password_fingerprint(user: User) -> str:
    """What a browser session is bound to: a session started with one password ends when
    another is set, whichever path sets it, with no list of sessions to remember to revoke."""
    return _sha256(user.password_hash)[:32]


def normalise_email(email: str) -> str:
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"{email!r} is not a valid email address: {exc}") from None
    return result.normalized.lower()


def create_user(
    session: Session,
    email: str,
    password: str,
    *,
    now: datetime,
    is_admin: bool = False,
    verified: bool = False,
    locale: str | None = None,
) -> User:
    """A new account; `locale` is the language its emails are written in (None: the
    language of the request that sends each one, see i18n.py)."""
    email = normalise_email(email)
    passwords.check_policy(password, email=email)
    if repo.user_by_email(session, email) is not None:
        raise Conflict(
            "An account with this email already exists. Sign in, or reset your password.",
            code="email_taken",
        )
    user = User(
        email=email,
        password_hash=passwords.hash_password(password),
        is_admin=is_admin,
        email_verified_at=now if verified else None,
        created_at=now,
        locale=locale,
    )
    session.add(user)
    session.flush()
    return user


def verification_token(secret: str, user: User) -> str:
    return URLSafeTimedSerializer(secret, salt=VERIFY_SALT).dumps({"u": user.id, "e": user.email})


def send_verification(
    session: Session, secret: str, base_url: str, user: User, *, now: datetime
) -> None:
    """The confirmation email, sent once this transaction commits."""
    link = f"{base_url.rstrip('/')}/verify?token={verification_token(secret, user)}"
    with use(user.locale):
        mail.write(
            session,
            to=user.email,
            subject=t("Confirm your RemoveAny email address"),
            body=t("Welcome to RemoveAny!")
            + "\n\n"
            + t(
                "Open this link to confirm your email address and receive your free "
                "credits:\n\n{link}",
                link=link,
            )
            + "\n\n"
            + t("The link is valid for 3 days. If you did not sign up, ignore this message.")
            + "\n",
            user_id=user.id,
            now=now,
        )


def set_locale(user: User, locale: str) -> None:
    """Remember the language the person chose on the site (their emails follow it)."""
    if user.locale != locale:
        user.locale = locale


def verify_email(
    session: Session,
    secret: str,
    token: str,
    *,
    now: datetime,
    signup_credits: int,
    signup_credit_days: int,
    ip: str = "",
    signup_grants_per_ip_per_day: int = 3,
) -> User:
    """Mark the address verified and grant the signup credits, once per mailbox."""
    try:
        data = URLSafeTimedSerializer(secret, salt=VERIFY_SALT).loads(token, max_age=VERIFY_MAX_AGE)
    except SignatureExpired:
        raise InvalidToken(
            "This confirmation link has expired. Sign in and ask for a new one."
        ) from None
    except BadSignature:
        raise InvalidToken(
            "This confirmation link is not valid. Copy the whole link from the email."
        ) from None
    user = repo.user_by_id(session, int(data["u"]))
    if user is None or user.email != data["e"]:
        raise InvalidToken("This confirmation link no longer matches an account.")
    if user.email_verified_at is None:
        user.email_verified_at = now
        free.grant_signup(
            session,
            user.id,
            user.email,
            ip=ip,
            now=now,
            credits=signup_credits,
            days=signup_credit_days,
            per_ip_per_day=signup_grants_per_ip_per_day,
        )
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    try:
        email = normalise_email(email)
    except InvalidEmail:
        email = email.strip().lower()
    user = repo.user_by_email(session, email)
    if not passwords.verify_password(user.password_hash if user else None, password):
        raise Unauthorized("Email or password is wrong.", code="invalid_credentials")
    assert user is not None
    if passwords.needs_rehash(user.password_hash):
        # The same password under new parameters: its sessions stay bound to it.
        before = password_fingerprint(user)
        user.password_hash = passwords.hash_password(password)
        repo.rebind_sessions(session, user.id, before, password_fingerprint(user))
        session.flush()
    return user


def start_session(
    session: Session, user: User, *, now: datetime, days: int, user_agent: str, ip: str
) -> tuple[str, WebSession]:
    token = secrets.token_urlsafe(32)
    web_session = WebSession(
        token_hash=_sha256(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        user_agent=user_agent[:400],
        ip=ip[:64],
        created_at=now,
        expires_at=now + timedelta(days=days),
        last_seen_at=now,
        password_fingerprint=password_fingerprint(user),
    )
    session.add(web_session)
    session.flush()
    return token, web_session


def resolve_session(session: Session, token: str, *, now: datetime) -> WebSession | None:
    """The live session for a cookie: not revoked, not expired, and started with the
    account's current password."""
    web_session = repo.session_by_token_hash(session, _sha256(token))
    if web_session is None or web_session.revoked_at is not None or web_session.expires_at <= now:
        return None
    user = repo.user_by_id(session, web_session.user_id)
    if user is None or web_session.password_fingerprint != password_fingerprint(user):
        return None
    if now - web_session.last_seen_at > timedelta(minutes=5):
        web_session.last_seen_at = now
    return web_session


def end_session(session: Session, web_session: WebSession, *, now: datetime) -> None:
    web_session.revoked_at = now
    session.flush()


def shown_key_name(name: str) -> str:
    """A key's name as people read it: the default name in their language, a name they chose
    as they wrote it."""
    return t(DEFAULT_KEY_NAME) if name == DEFAULT_KEY_NAME else name


def create_api_key(session: Session, user: User, name: str, *, now: datetime) -> tuple[str, ApiKey]:
    """Returns the plaintext key, which is never retrievable again."""
    require_verified(user)
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        user_id=user.id,
        name=(name.strip() or DEFAULT_KEY_NAME)[:100],
        prefix=key[:12],
        key_hash=_sha256(key),
        created_at=now,
    )
    session.add(api_key)
    session.flush()
    return key, api_key


def list_api_keys(session: Session, user: User) -> Sequence[ApiKey]:
    return repo.api_keys_of(session, user.id)


def revoke_api_key(session: Session, user: User, key_id: int, *, now: datetime) -> ApiKey:
    api_key = repo.api_key_of(session, user.id, key_id)
    if api_key is None:
        raise NotFound("No such API key.")
    if api_key.revoked_at is None:
        api_key.revoked_at = now
    session.flush()
    return api_key


def user_for_api_key(session: Session, key: str, *, now: datetime) -> User:
    api_key = repo.api_key_by_hash(session, _sha256(key.strip()))
    if api_key is None or api_key.revoked_at is not None:
        raise Forbidden(
            "The API key is missing, wrong or revoked. Create a key on your account page.",
            code="invalid_api_key",
        )
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        api_key.last_used_at = now
    user = repo.user_by_id(session, api_key.user_id)
    assert user is not None
    return user


def require_verified(user: User) -> None:
    if not user.is_verified:
        raise EmailNotVerified(
            "Confirm your email address first: open the link we sent you, then try again."
        )
