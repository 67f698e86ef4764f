"""The admin web page: find users and act on them (with a reason), credits, orders and
emails needing attention, service status, announcements, publishing new terms, and the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from removeany.api.auth import check_csrf
from removeany.api.params import FormRowId, RowId
from removeany.billing import service as billing
from removeany.context import Context
from removeany.errors import DomainError, Forbidden
from removeany.legal import service as legal
from removeany.mail import service as mail
from removeany.moderation import audit
from removeany.moderation import service as moderation
from removeany.moderation.audit import Actor
from removeany.moderation.service import SERVICE_NAMES
from removeany.privacy import service as privacy
from removeany.web.routes import _ctx, _error_page, _to_login, _viewer, redirect, render, t

router = APIRouter(include_in_schema=False)

ADMIN_ONLY = Forbidden("Only administrators can open this page.", code="admin_only")
# Every form on the page sends the search (`q`): a refused action lists the same users again.
Search = Annotated[str, Form(max_length=320)]
# Which field of a refused form its error is about, by the error's code: the page marks that
# field invalid, describes it by the error and focuses it. A user's action refused for any
# other reason is about the action chosen; an error about no field is focused itself.
ERROR_FIELDS = {
    "user": {
        "invalid_amount": "amount",
        "insufficient_credits": "amount",
        "invalid_days": "days",
        "reason_required": "reason",
    },
    "services": {"message_required": "message", "reason_required": "reason"},
    "announcement": {"invalid_request": "message"},
}


def _set_by(session: Session, actors: Iterable[tuple[int | None, str]]) -> list[str]:
    """Who set each row (stored account id, label), as the page shows it."""
    return [audit.shown(name) for name in audit.names(session, actors)]


def _page(
    request: Request,
    ctx: Context,
    q: str = "",
    *,
    status_code: int = 200,
    typed: dict[str, Any] | None = None,
    **context: Any,
) -> Response:
    """The admin page. After a refused action, `typed` is that form as it was filled in: it is
    shown filled in again, with the error beside it (a user's row, or the form's section)."""
    typed = typed or {}
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        if not viewer.user.is_admin:
            return _error_page(request, ADMIN_ONLY, viewer)
        users = list(moderation.search_users(session, q, limit=50))
        services = list(moderation.service_statuses(session))
        announcements = list(moderation.current_announcements(session, ctx.now()))
        terms = legal.current(session)
        error_at = typed.get("form")
        if error_at == "user" and typed["user_id"] not in {u.id for u in users}:
            error_at = None  # their row is not listed: the error goes above everything
        error = context.get("error")
        error_field = None
        if error_at and isinstance(error, DomainError):
            default = "action" if error_at == "user" else None
            error_field = ERROR_FIELDS.get(error_at, {}).get(error.code, default)
        return render(
            request,
            "admin.html",
            status_code=status_code,
            viewer=viewer,
            q=q,
            typed=typed,
            error_at=error_at,
            error_field=error_field,
            users=users,
            services=zip(
                services,
                _set_by(session, ((s.updated_by_id, s.updated_by) for s in services)),
                strict=True,
            ),
            service_choices=[(code, t(label)) for code, label in SERVICE_NAMES.items()],
            announcements=zip(
                announcements,
                _set_by(session, ((a.created_by_id, a.created_by) for a in announcements)),
                strict=True,
            ),
            entries=list(audit.entries(session, limit=50)),
            terms=terms,
            terms_by=audit.shown(legal.publisher(session, terms.version)),
            builtin_withheld=legal.builtin_withheld(session),
            builtin_version=legal.BUILTIN.version,
            review=billing.orders_under_review(session),
            failing_mail=list(mail.failing(session)),
            credit_days=ctx.settings.admin_credit_days,
            **context,
        )


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, q: str = "", done: str = "") -> Response:
    return _page(request, _ctx(request), q[:320], notice=t("Done.") if done else None)


def _act(
    request: Request, csrf_token: str, action: Any, *, q: str, typed: dict[str, Any]
) -> Response:
    """Run `action` for an admin. A refused one answers with the page searched as before (`q`)
    and the form as it was typed (`typed`), so the admin corrects it for the same user."""
    ctx = _ctx(request)
    try:
        with ctx.db.transaction() as session:
            viewer = _viewer(ctx, session, request)
            if viewer is None:
                return _to_login(request, "/admin")
            if not viewer.user.is_admin:
                return _error_page(request, ADMIN_ONLY, viewer)
            check_csrf(viewer.web, csrf_token)
            keys = action(ctx, session, Actor(viewer.user.id, viewer.user.email)) or []
            privacy.delete_files(ctx.storage, keys)
    except DomainError as exc:
        return _page(request, ctx, q, status_code=exc.status_code, error=exc, typed=typed)
    return redirect("/admin?done=1")


def _days(ctx: Context, days: str) -> int:
    """The days a grant lasts: the form's, or the operator's default when left empty."""
    if not days.strip():
        return ctx.settings.admin_credit_days
    try:
        return int(days)
    except ValueError:
        raise DomainError(
            "Enter how many days the credits last, e.g. 365.", code="invalid_days"
        ) from None


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
def user_action(
    user_id: RowId,
    request: Request,
    action: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
    days: Annotated[str, Form()] = "",
    q: Search = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def run(ctx: Context, session: Any, actor: Actor) -> list[str]:
        user = moderation.find_user(session, user_id)
        now = ctx.now()
        if action == "restrict":
            moderation.restrict(session, actor, user, reason, now=now)
        elif action == "ban":
            moderation.ban(session, actor, user, reason, now=now)
        elif action == "reinstate":
            moderation.reinstate(session, actor, user, reason, now=now)
        elif action == "delete":
            return moderation.delete_user(session, actor, user, reason, now=now)
        elif action == "credits":
            try:
                value = int(amount)
            except ValueError:
                raise DomainError(
                    "Enter a whole number of credits, e.g. 10 or -5.", code="invalid_amount"
                ) from None
            if value >= 0:
                moderation.grant_credits(
                    session, actor, user, value, reason, now=now, days=_days(ctx, days)
                )
            else:
                moderation.revoke_credits(session, actor, user, -value, reason, now=now)
        else:
            raise DomainError("Choose an action.", code="invalid_request")
        return []

    typed = {"form": "user", "user_id": user_id, "action": action, "amount": amount, "days": days}
    return _act(request, csrf_token, run, q=q, typed={**typed, "reason": reason})


@router.post("/admin/services", response_class=HTMLResponse)
def service_action(
    request: Request,
    service: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    q: Search = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def run(ctx: Context, session: Any, actor: Actor) -> None:
        moderation.set_service_status(
            session, actor, service, status, message, reason, now=ctx.now()
        )

    typed = {"form": "services", "service": service, "status": status, "message": message}
    return _act(request, csrf_token, run, q=q, typed={**typed, "reason": reason})


@router.post("/admin/announcements", response_class=HTMLResponse)
def announce(
    request: Request,
    message: Annotated[str, Form()] = "",
    level: Annotated[str, Form()] = "info",
    withdraw: FormRowId = 0,
    q: Search = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def run(ctx: Context, session: Any, actor: Actor) -> None:
        if withdraw:
            moderation.withdraw(session, actor, withdraw, now=ctx.now())
        else:
            moderation.announce(session, actor, message, now=ctx.now(), level=level)

    typed = {"form": "announcement", "message": message, "level": level} if not withdraw else {}
    return _act(request, csrf_token, run, q=q, typed=typed)


@router.post("/admin/terms", response_class=HTMLResponse)
def publish_terms(
    request: Request,
    summary: Annotated[str, Form()] = "",
    terms_en: Annotated[str, Form()] = "",
    terms_zh: Annotated[str, Form()] = "",
    privacy_en: Annotated[str, Form()] = "",
    privacy_zh: Annotated[str, Form()] = "",
    q: Search = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    def run(ctx: Context, session: Any, actor: Actor) -> None:
        terms = legal.publish(
            session,
            actor,
            summary=summary,
            terms_en=terms_en,
            terms_zh=terms_zh,
            privacy_en=privacy_en,
            privacy_zh=privacy_zh,
            now=ctx.now(),
        )
        legal.notify_users(session, terms, base_url=ctx.settings.base_url, now=ctx.now())

    typed = {
        "form": "terms",
        "summary": summary,
        "terms_en": terms_en,
        "terms_zh": terms_zh,
        "privacy_en": privacy_en,
        "privacy_zh": privacy_zh,
    }
    return _act(request, csrf_token, run, q=q, typed=typed)
