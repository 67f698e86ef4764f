"""Web pages for account security: second sign-in step, forgotten password, "this wasn't me",
email change confirmation, and the security page (sessions, password, email, 2FA, export,
account deletion). Thin: parse the form, call `accounts.flows`, render."""

from __future__ import annotations

from collections.abc import Callable
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
    flash,
    redirect,
    render,
    t,
    take_flash,
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
            error=exc,
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
            error=exc,
        )
    return _render_form(request, "trust_forgot.html", email="", sent=True)


@router.get("/reset-password", response_class=HTMLResponse)
def reset_form(request: Request, token: str = "") -> Response:
    try:
        flows.check_reset_link(_ctx(request), token)
    except DomainError as exc:
        return _dead_reset_link(request, exc)
    return _render_form(request, "trust_reset.html", token=token)


def _dead_reset_link(request: Request, exc: DomainError) -> Response:
    """No password form for a link that cannot work (used, expired): a way to a new one."""
    return _render_form(
        request, "trust_reset.html", status_code=exc.status_code, error=exc, dead_link=True
    )


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
        if exc.code == "invalid_token":
            return _dead_reset_link(request, exc)
        return _render_form(
            request, "trust_reset.html", status_code=exc.status_code, token=token, error=exc
        )
    response = redirect("/login?reset=1")
    _clear_session_cookie(ctx, response)
    return response


# --- "this wasn't me" and email change -------------------------------------------------------


@router.get("/account/not-me", response_class=HTMLResponse)
def not_me_form(request: Request, token: str = "", done: str = "") -> Response:
    """`done`: "1" locked, "restored" moved back to the mailed address and locked, "stuck"
    locked but another account holds that address now."""
    restore = security.not_me_restore(_ctx(request).secret_key, token) if token else None
    return _render_form(
        request, "trust_not_me.html", token=token, done=done, restore=restore is not None
    )


@router.post("/account/not-me", response_class=HTMLResponse)
def not_me(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    try:
        _check_form_token(request, csrf_token)
        reported = flows.not_me(ctx, token)
    except DomainError as exc:
        return _render_form(
            request,
            "trust_not_me.html",
            status_code=exc.status_code,
            token=token,
            error=exc,
        )
    done = "stuck" if reported.restore_refused else "restored" if reported.restored else "1"
    # A redirect: reloading the confirmation does not lock and email all over again.
    response = redirect(f"/account/not-me?done={done}")
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
            error=exc,
        )
    return _render_form(request, "trust_email_confirm.html", token="", done=user.email)


# --- the security page -----------------------------------------------------------------------


def _security_page(
    request: Request,
    ctx: Context,
    *,
    status_code: int = 200,
    shown: Callable[[Viewer], dict[str, Any]] | None = None,
    **context: Any,
) -> Response:
    """The security page; `shown(viewer)` adds what a form that redirected here made."""
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request, "/account/security")
        if shown is not None:
            context = {**shown(viewer), **context}
        return render(
            request,
            "trust_security.html",
            status_code=status_code,
            viewer=viewer,
            balance=ledger.balance(session, viewer.user.id, ctx.now()),
            sessions=list(security.active_sessions(session, viewer.user, ctx.now())),
            keys=[k for k in accounts.list_api_keys(session, viewer.user) if not k.revoked_at],
            recovery_left=security.recovery_codes_left(session, viewer.user),
            retention_hours=ctx.settings.retention_hours,
            **context,
        )


@router.get("/account/security", response_class=HTMLResponse)
def security_page(request: Request, done: str = "") -> Response:
    """Every form here redirects back (303), so a reload never repeats it: `done` says what it
    did, and what it made that can be shown only once comes by take_flash()."""
    ctx = _ctx(request)
    notices = {
        "session": t("That session is signed out."),
        "password": t("Your password was changed. Your other sessions were signed out."),
        "2fa-off": t("Two-factor authentication is off."),
    }

    def shown(viewer: Viewer) -> dict[str, Any]:
        made = take_flash(request, viewer)
        context: dict[str, Any] = {
            "notice": notices.get(done),
            "recovery_codes": made.get("recovery_codes"),
        }
        if "email_sent_to" in made:
            context["notice"] = t(
                "Open the link we sent to {address} to confirm the change.",
                address=made["email_sent_to"],
            )
        if done == "2fa-setup":  # a reload shows the same secret: the app may have it already
            secret = security.pending_totp(viewer.user, secret_key=ctx.secret_key)
            if secret:
                context.update(totp_secret=secret, totp_uri=security.totp_uri(viewer.user, secret))
        return context

    return _security_page(request, ctx, shown=shown)


def _post(
    request: Request, csrf_token: str, action: Callable[[Context, Viewer], Response]
) -> Response:
    """Run `action(ctx, viewer)` for a signed-in viewer with a valid CSRF token; errors are
    shown on the security page."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, "/account/security")
        if not isinstance(viewer, Viewer):
            return viewer
    try:
        return action(ctx, viewer)
    except DomainError as exc:
        return _security_page(request, ctx, status_code=exc.status_code, error=exc)


@router.post("/account/security/sessions/{session_id}/revoke", response_class=HTMLResponse)
def revoke_session(
    session_id: RowId, request: Request, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    def action(ctx: Context, viewer: Viewer) -> Response:
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
    def action(ctx: Context, viewer: Viewer) -> Response:
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
    def action(ctx: Context, viewer: Viewer) -> Response:
        address = flows.request_email_change(ctx, viewer.user.id, current_password, new_email)
        return flash(ctx, viewer, "/account/security", email_sent_to=address)

    return _post(request, csrf_token, action)


@router.post("/account/security/2fa/setup", response_class=HTMLResponse)
def totp_setup(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Viewer) -> Response:
        flows.begin_totp(ctx, viewer.user.id, current_password)
        return redirect("/account/security?done=2fa-setup")

    return _post(request, csrf_token, action)


@router.post("/account/security/2fa/enable", response_class=HTMLResponse)
def totp_enable(
    request: Request,
    code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Viewer) -> Response:
        try:
            codes = flows.enable_totp(ctx, viewer.user.id, code)
        except DomainError as exc:
            # A mistyped code: the same secret again (a new one would orphan the app's entry).
            pending = flows.pending_totp(ctx, viewer.user.id)
            if pending is None:
                raise
            return _security_page(
                request,
                ctx,
                status_code=exc.status_code,
                error=exc,
                totp_secret=pending[0],
                totp_uri=pending[1],
            )
        return flash(ctx, viewer, "/account/security", recovery_codes=codes)

    return _post(request, csrf_token, action)


@router.post("/account/security/2fa/disable", response_class=HTMLResponse)
def totp_disable(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Viewer) -> Response:
        flows.disable_totp(ctx, viewer.user.id, current_password, code)
        return redirect("/account/security?done=2fa-off")

    return _post(request, csrf_token, action)


@router.post("/account/security/recovery-codes", response_class=HTMLResponse)
def recovery_codes(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Viewer) -> Response:
        codes = flows.regenerate_recovery_codes(ctx, viewer.user.id, current_password)
        return flash(ctx, viewer, "/account/security", recovery_codes=codes)

    return _post(request, csrf_token, action)


@router.post("/account/delete", response_class=HTMLResponse)
def delete_account(
    request: Request,
    current_password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def action(ctx: Context, viewer: Viewer) -> Response:
        privacy.delete_account(ctx, viewer.user.id, current_password)
        response = render(request, "trust_deleted.html")
        _clear_session_cookie(ctx, response)
        return response

    return _post(request, csrf_token, action)
