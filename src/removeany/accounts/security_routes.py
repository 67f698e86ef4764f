"""JSON API for account security: sign-in (with 2FA), password reset, "this wasn't me",
sessions, and changes that need the current password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from removeany.accounts import flows, security
from removeany.accounts import repository as repo
from removeany.accounts import service as accounts
from removeany.accounts.models import WebSession
from removeany.accounts.routes import key_out, user_out
from removeany.accounts.schemas import (
    Accepted,
    CodeIn,
    EmailChangeIn,
    EmailIn,
    LoginIn,
    LoginOut,
    PasswordChangeIn,
    ReauthIn,
    RecoveryCodesOut,
    ResetConfirmIn,
    SecurityOut,
    SessionOut,
    TokenIn,
    TotpDisableIn,
    TotpSetupOut,
    UserOut,
)
from removeany.api.auth import (
    SESSION_COOKIE,
    api_key_from,
    client_ip,
    require_browser_user,
    require_user,
    session_required,
    user_agent,
    web_session,
)
from removeany.api.contract import AUTH, errors
from removeany.api.params import RowId
from removeany.context import Context
from removeany.errors import DomainError

router = APIRouter(prefix="/api/v1", tags=["account security"])


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def set_session_cookie(ctx: Context, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.settings.session_days * 24 * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
    )


def _session_user(ctx: Context, request: Request) -> tuple[int, WebSession | None]:
    """The caller and, when signed in with a browser, its session."""
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        web = None if api_key_from(request) else web_session(ctx, session, request)
        if web is not None and web.user_id != user.id:
            web = None
        return user.id, web


def _browser_only(web: WebSession | None) -> WebSession:
    if web is None:
        raise session_required()
    return web


@router.post("/auth/login", responses=errors(401, 403, 429, 503), response_model=LoginOut)
def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
    """Start a browser session (cookie). With 2FA on, send `totp_code` as well: without it
    the answer is 401 `totp_required`. Failed attempts are limited per account and per IP
    (429 `too_many_attempts`)."""
    ctx = _ctx(request)
    signed = flows.sign_in(
        ctx,
        email=body.email,
        password=body.password,
        totp_code=body.totp_code,
        user_agent=user_agent(request),
        ip=client_ip(request),
    )
    set_session_cookie(ctx, response, signed.token)
    with ctx.db.transaction() as session:
        user = repo.user_by_id(session, signed.user_id)
        assert user is not None
        return LoginOut(
            user=user_out(user), csrf_token=signed.csrf_token, new_device=signed.new_device
        )


@router.post("/auth/logout", response_model=Accepted)
def logout(request: Request, response: Response) -> Accepted:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        web = web_session(ctx, session, request)
        if web is not None:
            require_user(ctx, session, request)  # checks the CSRF token
            accounts.end_session(session, web, now=ctx.now())
    response.delete_cookie(SESSION_COOKIE, path="/")
    return Accepted(message="Signed out.")


@router.post(
    "/auth/password-reset", responses=errors(429, 503), status_code=202, response_model=Accepted
)
def password_reset(body: EmailIn, request: Request) -> Accepted:
    """Email a single-use reset link if the address has an account (the answer is the same
    either way)."""
    flows.request_password_reset(_ctx(request), body.email, ip=client_ip(request))
    return Accepted(
        message="If an account uses this address, we sent it a link to choose a new password."
    )


@router.post("/auth/password-reset/confirm", responses=errors(400), response_model=UserOut)
def password_reset_confirm(body: ResetConfirmIn, request: Request) -> UserOut:
    ctx = _ctx(request)
    user = flows.reset_password(ctx, body.token, body.new_password)
    with ctx.db.transaction() as session:
        fresh = repo.user_by_id(session, user.id)
        assert fresh is not None
        return user_out(fresh)


@router.post("/auth/not-me", responses=errors(400, 409), response_model=Accepted)
def not_me(body: TokenIn, request: Request) -> Accepted:
    """The "this wasn't me" link from a security email: lock the account, sign out every
    session, revoke every API key, cancel reset and email-change links sent before, and email
    a reset link. The link mailed to an old address after an email change first moves the
    account back to that address, which was reserved for it meanwhile (an unconfirmed account
    holding it is erased; 409 `email_taken` when a confirmed one does: the account is locked
    all the same, and only the site's operator can move it back)."""
    reported = flows.not_me(_ctx(request), body.token)
    if reported.restore_refused:
        raise DomainError(
            "Your account is locked and everyone is signed out, but another account now uses "
            "your old address, so we could not move yours back to it. Contact the operator "
            "of this site to get your account back.",
            code="email_taken",
            status_code=409,
        )
    moved = f"Your account uses {reported.restored} again. " if reported.restored else ""
    return Accepted(
        message=f"{moved}Your account is locked, everyone is signed out and your API keys are "
        f"revoked. We emailed {reported.email} a link to choose a new password, which "
        "unlocks it."
    )


@router.get("/account/security", responses=errors(*AUTH), response_model=SecurityOut)
def security_overview(request: Request) -> SecurityOut:
    """Active sessions and API keys with their last use."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        current = web_session(ctx, session, request)
        return SecurityOut(
            two_factor=user.has_2fa,
            recovery_codes_left=security.recovery_codes_left(session, user),
            sessions=[
                SessionOut(
                    id=w.id,
                    user_agent=w.user_agent,
                    ip=w.ip,
                    created_at=w.created_at,
                    last_seen_at=w.last_seen_at,
                    expires_at=w.expires_at,
                    current=current is not None and current.id == w.id,
                )
                for w in security.active_sessions(session, user, ctx.now())
            ],
            api_keys=[key_out(k) for k in accounts.list_api_keys(session, user)],
        )


@router.delete(
    "/account/sessions/{session_id}", responses=errors(*AUTH, 404), response_model=Accepted
)
def revoke_session(session_id: RowId, request: Request) -> Accepted:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        user = require_browser_user(ctx, session, request)
        security.revoke_session(session, user, session_id, now=ctx.now())
    return Accepted(message="That session is signed out.")


@router.post("/account/password", responses=errors(*AUTH, 400, 429, 503), response_model=Accepted)
def change_password(body: PasswordChangeIn, request: Request) -> Accepted:
    ctx = _ctx(request)
    user_id, web = _session_user(ctx, request)
    flows.change_password(
        ctx, user_id, _browser_only(web), body.current_password, body.new_password
    )
    return Accepted(message="Password changed. Your other sessions were signed out.")


@router.post(
    "/account/email",
    responses=errors(*AUTH, 400, 409, 429, 503),
    status_code=202,
    response_model=Accepted,
)
def change_email(body: EmailChangeIn, request: Request) -> Accepted:
    ctx = _ctx(request)
    user_id, web = _session_user(ctx, request)
    _browser_only(web)
    address = flows.request_email_change(ctx, user_id, body.current_password, body.new_email)
    return Accepted(message=f"Open the link we sent to {address} to confirm the change.")


@router.post("/account/email/confirm", responses=errors(400, 409), response_model=UserOut)
def confirm_email(body: TokenIn, request: Request) -> UserOut:
    ctx = _ctx(request)
    user = flows.confirm_email_change(ctx, body.token)
    with ctx.db.transaction() as session:
        fresh = repo.user_by_id(session, user.id)
        assert fresh is not None
        return user_out(fresh)


@router.post(
    "/account/2fa/setup", responses=errors(*AUTH, 409, 429, 503), response_model=TotpSetupOut
)
def totp_setup(body: ReauthIn, request: Request) -> TotpSetupOut:
    """Step 1: a new secret for your authenticator app (not active until step 2)."""
    ctx = _ctx(request)
    user_id, web = _session_user(ctx, request)
    _browser_only(web)
    secret, uri = flows.begin_totp(ctx, user_id, body.current_password)
    return TotpSetupOut(secret=secret, otpauth_uri=uri)


@router.post(
    "/account/2fa/enable",
    responses=errors(*AUTH, 400, 409, 429, 503),
    response_model=RecoveryCodesOut,
)
def totp_enable(body: CodeIn, request: Request) -> RecoveryCodesOut:
    """Step 2: a current code from the app turns 2FA on and returns recovery codes."""
    ctx = _ctx(request)
    user_id, web = _session_user(ctx, request)
    _browser_only(web)
    return RecoveryCodesOut(recovery_codes=flows.enable_totp(ctx, user_id, body.code))


@router.post(
    "/account/2fa/disable", responses=errors(*AUTH, 400, 429, 503), response_model=Accepted
)
def totp_disable(body: TotpDisableIn, request: Request) -> Accepted:
    ctx = _ctx(request)
    user_id, web = _session_user(ctx, request)
    _browser_only(web)
    flows.disable_totp(ctx, user_id, body.current_password, body.code)
    return Accepted(message="Two-factor authentication is off.")


@router.post(
    "/account/2fa/recovery-codes",
    responses=errors(*AUTH, 400, 429, 503),
    response_model=RecoveryCodesOut,
)
def totp_recovery_codes(body: ReauthIn, request: Request) -> RecoveryCodesOut:
    ctx = _ctx(request)
    user_id, web = _session_user(ctx, request)
    _browser_only(web)
    return RecoveryCodesOut(
        recovery_codes=flows.regenerate_recovery_codes(ctx, user_id, body.current_password)
    )
