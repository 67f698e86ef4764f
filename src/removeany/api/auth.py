"""Who is calling: an API key (X-Api-Key or Bearer) or a browser session cookie plus CSRF token."""

from __future__ import annotations

import secrets

from fastapi import Request
from sqlalchemy.orm import Session

from removeany.accounts import repository as accounts_repo
from removeany.accounts import service as accounts
from removeany.accounts.models import User, WebSession
from removeany.accounts.security import check_can_sign_in
from removeany.context import Context
from removeany.errors import Forbidden, Unauthorized

SESSION_COOKIE = "removeany_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def api_key_from(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def web_session(ctx: Context, session: Session, request: Request) -> WebSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return accounts.resolve_session(session, token, now=ctx.now())


def check_csrf(web: WebSession, supplied: str | None) -> None:
    if not supplied or not secrets.compare_digest(supplied, web.csrf_token):
        raise Forbidden(
            "The form expired or came from another site. Reload the page and try again.",
            code="csrf_failed",
        )


def require_user(ctx: Context, session: Session, request: Request) -> User:
    """API callers: a key, or a signed-in browser (which must send X-CSRF-Token on writes)."""
    key = api_key_from(request)
    if key is not None:
        key_user = accounts.user_for_api_key(session, key, now=ctx.now())
        check_can_sign_in(key_user)
        return key_user
    web = web_session(ctx, session, request)
    if web is None:
        raise Unauthorized(
            "Sign in, or send an API key in the X-Api-Key header.", code="not_authenticated"
        )
    if request.method not in SAFE_METHODS:
        check_csrf(web, request.headers.get("x-csrf-token"))
    user = accounts_repo.user_by_id(session, web.user_id)
    assert user is not None
    check_can_sign_in(user)
    return user


def require_browser_user(ctx: Context, session: Session, request: Request) -> User:
    """Managing how the account is reached (API keys, sessions): a signed-in browser with its
    CSRF token, never an API key, so that a leaked key can neither mint a key that outlives
    its own revocation nor sign its owner out."""
    if api_key_from(request) is not None:
        raise session_required()
    return require_user(ctx, session, request)


def session_required() -> Forbidden:
    return Forbidden(
        "Sign in with your password to change how you sign in; API keys cannot do this.",
        code="session_required",
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:400]


def require_admin(ctx: Context, session: Session, request: Request) -> User:
    user = require_user(ctx, session, request)
    if not user.is_admin:
        raise Forbidden("Only administrators can do this.", code="admin_only")
    return user
