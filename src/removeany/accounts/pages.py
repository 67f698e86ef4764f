"""Web pages for account security: second sign-in step, forgotten password, "this wasn't me",
email change confirmation, and the security page (sessions, password, email, 2FA, export,
account deletion). Thin: parse the form, call `accounts.flows`, render."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from removeany.accounts import flows, security
from removeany.accounts import service as accounts
from removeany.api.auth import client_ip, user_agent
from removeany.api.params import RowId
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.errors import DomainError
from removeany.privacy import service as privacy
from removeany.web.routes import (
    Viewer,
    _check_form_token,
    _clear_session_cookie,
    _ctx,
    _form_viewer,
    _render_form,
    _safe_next,
    _set_session_cookie,
    _to_login,
    _viewer,
    redirect,
    render,
    t,
)

router = APIRouter(include_in_schema=False)


# --- second sign-in step ---------------------------------------------------------------------


@router.get("/login/2fa", response_class=HTMLResponse)
def two_factor_form(request: Request, pending: str = "", next: str = "") -> Response:
    return _render_form(request, "trust_2fa.html", pending=pending, next=_safe_next(next))


@router.post("/login/2fa", response_class=HTMLResponse)
def two_factor(
    request: Request,
    pending: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    target = _safe_next(next)
    try:
        _check_form_token(request, csrf_token)
        signed = flows.finish_two_factor(
            ctx,
            pending=pending,
            code=code,
            user_agent=user_agent(request),
            ip=client_ip(request),
        )
    except DomainError as exc:
        if exc.code == "sign_in_expired":
            return redirect(f"/login?next={quote(target, safe='/')}")
        return _render_form(
            request,
            "trust_2fa.html",
            status_code=exc.status_code,
            pending=pending,
            next=target,
            error=exc.message,
        )
    response = redirect(target)
    _set_session_cookie(ctx, response, signed.token)
    return response


def two_factor_redirect(pending: str, next: str) -> Response:
    """Where the password form sends a person whose account has 2FA on."""
    return redirect(f"/login/2fa?pending={quote(pending)}&next={quote(_safe_next(next), safe='/')}")


# --- forgotten password ----------------------------------------------------------------------


@router.get("/forgot-password", response_class=HTMLResponse)
def forgot_form(request: Request) -> Response:
    return _render_form(request, "trust_forgot.html", email="")


@router.post("/forgot-password", response_class=HTMLResponse)
def forgot(
    request: Request,
    email: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    try:
        _check_form_token(request, csrf_token)
        flows.request_password_reset(ctx, email, ip=client_ip(request))
    except DomainError as exc:
        return _render_form(
            request,
            "trust_forgot.html",
            status_code=exc.status_code,
            email=email,
            error=exc.message,
        )
    return _render_form(request, "trust_forgot.html", email="", sent=True)


@router.get("/reset-password", response_class=HTMLResponse)
def reset_form(request: Request, token: str = "") -> Response:
    return _render_form(request, "trust_reset.html", token=token)


@router.post("/reset-password", response_class=HTMLResponse)
def reset(
    request: Request,
    token: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    try:
        _check_form_token(request, csrf_token)
        flows.reset_password(ctx, token, password)
    except DomainError as exc:
        return _render_form(
            request, "trust_reset.html", status_code=exc.status_code, token=token, error=exc.message
        )
    response = redirect("/login?reset=1")
    _clear_session_cookie(ctx, response)
    return response


# --- "this wasn't me" and email change -------------------------------------------------------


@router.get("/account/not-me", response_class=HTMLResponse)
def not_me_form(request: Request, token: str = "") -> Response:
    return _render_form(request, "trust_not_me.html", token=token)


@router.post("/account/not-me", response_class=HTMLResponse)
def not_me(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    try:
        _check_form_token(request, csrf_token)
        flows.not_me(ctx, token)
    except DomainError as exc:
        return _render_form(
            request,
            "trust_not_me.html",
            status_code=exc.status_code,
            token=token,
            error=exc.message,
        )
    response = _render_form(request, "trust_not_me.html", token="", done=True)
    _clear_session_cookie(ctx, response)
    return response


@router.get("/account/email/confirm", response_class=HTMLResponse)
def email_confirm_form(request: Request, token: str = "") -> Response:
    return _render_form(request, "trust_email_confirm.html", token=token)


@router.post("/account/email/confirm", response_class=HTMLResponse)
def email_confirm(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    try:
        _check_form_token(request, csrf_token)
        user = flows.confirm_email_change(ctx, token)
    except DomainError as exc:
        return _render_form(
            request,
            "trust_email_confirm.html",
            status_code=exc.status_code,
            token=token,
            error=exc.message,
        )
    return _render_form(request, "trust_email_confirm.html", token="", done=user.email)


# --- the security page -----------------------------------------------------------------------


def _security_page(
    request: Request, ctx: Context, *, status_code: int = 200, **context: Any
) -> Response:
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request, "/account/security")
        return render(
            request,
            "trust_security.html",
            status_code=status_code,
            viewer=viewer,
            balance=ledger.balance(session, viewer.user.id, ctx.now()),
            sessions=list(security.active_sessions(session, viewer.user.id, ctx.now())),
            keys=[k for k in accounts.list_api_keys(session, viewer.user) if not k.revoked_at],
            recovery_left=security.recovery_codes_left(session, viewer.user),
            retention_hours=ctx.settings.retention_hours,
            **context,
        )


@router.get("/account/security", response_class=HTMLResponse)
def security_page(request: Request, done: str = "") -> Response:
    notices = {
        "session": t("That session is signed out."),
        "password": t("Your password was changed. Your other sessions were signed out."),
        "2fa-off": t("Two-factor authentication is off."),
    }
    return _security_page(request, _ctx(request), notice=notices.get(done))


def _post(request: Request, csrf_token: str, action: Any) -> Response:
    """Run `action(ctx, viewer)` for a signed-in viewer with a valid CSRF token; errors are
    shown on the security page."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, "/account/security")
        if not isinstance(viewer, Viewer):
            return viewer
    try:
        result = action(ctx, viewer)
    except DomainError as exc:
        return _security_page(request, ctx, status_code=exc.status_code, error=exc.message)
    if isinstance(result, Response):
        return result
    return _security_page(request, ctx, **(result or {}))


@router.post("/account/security/sessions/{session_id}/revoke", response_class=HTMLResponse)
def revoke_session(
    session_id: RowId, request: Request, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    def action(ctx: Context, viewer: Any) -> Response:
        with ctx.db.transaction() as session:
            security.revoke_session(session, viewer.user, session_id, now=ctx.now())
        return redirect("/account/security?done=session")

    return _post(request, csrf_token, action)


@router.post("/account/security/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Any) -> Response:
        flows.change_password(ctx, viewer.user.id, viewer.web, current_password, new_password)
        return redirect("/account/security?done=password")

    return _post(request, csrf_token, action)


@router.post("/account/security/email", response_class=HTMLResponse)
def change_email(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    new_email: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Any) -> dict[str, Any]:
        address = flows.request_email_change(ctx, viewer.user.id, current_password, new_email)
        return {
            "notice": t(
                "Open the link we sent to {address} to confirm the change.", address=address
            )
        }

    return _post(request, csrf_token, action)


@router.post("/account/security/2fa/setup", response_class=HTMLResponse)
def totp_setup(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Any) -> dict[str, Any]:
        secret, uri = flows.begin_totp(ctx, viewer.user.id, current_password)
        return {"totp_secret": secret, "totp_uri": uri}

    return _post(request, csrf_token, action)


@router.post("/account/security/2fa/enable", response_class=HTMLResponse)
def totp_enable(
    request: Request,
    code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Any) -> Response | dict[str, Any]:
        try:
            return {"recovery_codes": flows.enable_totp(ctx, viewer.user.id, code)}
        except DomainError as exc:
            # A mistyped code: the same secret again (a new one would orphan the app's entry).
            pending = flows.pending_totp(ctx, viewer.user.id)
            if pending is None:
                raise
            return _security_page(
                request,
                ctx,
                status_code=exc.status_code,
                error=exc.message,
                totp_secret=pending[0],
                totp_uri=pending[1],
            )

    return _post(request, csrf_token, action)


@router.post("/account/security/2fa/disable", response_class=HTMLResponse)
def totp_disable(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Any) -> Response:
        flows.disable_totp(ctx, viewer.user.id, current_password, code)
        return redirect("/account/security?done=2fa-off")

    return _post(request, csrf_token, action)


@router.post("/account/security/recovery-codes", response_class=HTMLResponse)
def recovery_codes(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Any) -> dict[str, Any]:
        codes = flows.regenerate_recovery_codes(ctx, viewer.user.id, current_password)
        return {"recovery_codes": codes}

    return _post(request, csrf_token, action)


@router.post("/account/delete", response_class=HTMLResponse)
def delete_account(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Any) -> Response:
        privacy.delete_account(ctx, viewer.user.id, current_password)
        response = render(request, "trust_deleted.html")
        _clear_session_cookie(ctx, response)
        return response

    return _post(request, csrf_token, action)
