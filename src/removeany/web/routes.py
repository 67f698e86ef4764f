"""Server-rendered pages: sign-up, sign-in, the workspace, job results and API keys.

Routes are thin: they parse the form, call the domain services in one transaction and render
a template. Errors a person can cause are shown in the page as sentences. The workspace's
JavaScript talks to the JSON API (`/api/v1/jobs`) with the session cookie and the session's
CSRF token; the forms here post back to these routes with the token in a hidden field.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from removeany import __version__, i18n
from removeany.accounts import flows, notify, sealing
from removeany.accounts import repository as accounts_repo
from removeany.accounts import service as accounts
from removeany.accounts.models import User, WebSession
from removeany.accounts.security import TwoFactorRequired, check_can_sign_in
from removeany.api.auth import SESSION_COOKIE, check_csrf, client_ip, user_agent, web_session
from removeany.catalog import prices
from removeany.context import Context
from removeany.credits import free
from removeany.credits import service as ledger
from removeany.errors import DomainError, Forbidden
from removeany.i18n import N_
from removeany.i18n import t as t  # re-exported: page modules import t and tn from here
from removeany.i18n import tn as tn
from removeany.jobs import repository as jobs_repo
from removeany.jobs import service as jobs
from removeany.jobs.models import Job
from removeany.privacy import service as privacy

# `t(text, **values)`: every visible string passes through it. It looks the English text up in
# the catalogue of the request's language (i18n.py, locales/*.json), then fills in
# the values. Page modules import it from here.

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"

# Before a session exists (register, sign in) forms use a signed double-submit token: a random
# nonce in a cookie, and the same nonce signed with the secret key in the form.
FORM_COOKIE = "removeany_form"
FORM_SALT = "web-form-csrf"
FORM_MAX_AGE = 24 * 3600
# What a form made that the page it redirects to shows once (a new API key): see flash().
FLASH_COOKIE = "removeany_flash"
FLASH_MAX_AGE = 300
RECENT_JOBS = 12

router = APIRouter(include_in_schema=False)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _switch_links(request: Request) -> list[dict[str, Any]]:
    """The footer's language switch: this page again, in each language."""
    query = list(request.query_params.multi_items())
    here = i18n.current()
    return [
        {
            "code": code,
            "label": i18n.LABELS[code],
            "url": i18n.switch_url(request.url.path, query, code),
            "current": code == here,
        }
        for code in i18n.LOCALES
    ]


def _t_template(text: str, /, **values: Any) -> str:
    """t() for templates: values that are markup (a link built with `{% set %}`) stay markup,
    everything else, the translation included, is escaped."""
    translated = i18n.translate(text)
    if any(isinstance(v, Markup) for v in values.values()):
        return Markup(escape(translated)).format(**values)
    return translated.format(**values) if values else translated


templates.env.globals.update(
    t=_t_template, tn=tn, version=__version__, language_links=_switch_links
)
templates.env.filters["when"] = _when


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


# --- helpers -------------------------------------------------------------------------------


@dataclass
class Viewer:
    """The signed-in person and their browser session."""

    user: User
    web: WebSession


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _viewer(ctx: Context, session: Session, request: Request) -> Viewer | None:
    web = web_session(ctx, session, request)
    if web is None:
        return None
    user = accounts_repo.user_by_id(session, web.user_id)
    if user is None:
        return None
    try:
        check_can_sign_in(user)  # banned, locked or deleted: treated as signed out
    except DomainError:
        return None
    if i18n.switched():  # the language switch was used: their emails follow it
        accounts.set_locale(user, i18n.current())
    return Viewer(user, web)


def _safe_next(value: str | None) -> str:
    """Only same-site paths: never an absolute URL or a scheme-relative `//host`."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/app"
    return value


def _to_login(request: Request, target: str | None = None) -> RedirectResponse:
    """Send a signed-out visitor to sign in, then back to where they were going."""
    if target is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/login?next={quote(target, safe='/')}")


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


RESOURCE_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


class ResourceHeaders:
    """Headers for what is not a page (pages get `_headers`): the JSON API, downloads, static
    files. Their Content-Type is final, and one opened as a document (a result in a tab of
    its own) runs nothing and cannot be framed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if not headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", RESOURCE_CSP)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def render(
    request: Request, template: str, /, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    ctx = _ctx(request)
    context.setdefault("viewer", None)
    context.setdefault("balance", None)
    context.setdefault("signup_credits", ctx.settings.signup_credits)
    context.setdefault("base_url", ctx.settings.base_url.rstrip("/"))
    context.setdefault("js_strings", _js_strings())
    context.setdefault("locale", i18n.current())
    # Errors are English sentences from the services: shown in the page's language. The code
    # stays, so a form can tie the sentence to the field it is about.
    error = context.get("error")
    context.setdefault("error_code", error.code if isinstance(error, DomainError) else None)
    if isinstance(error, str | BaseException):
        context["error"] = i18n.error_text(context["error"])
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    _headers(response)
    if getattr(request.state, "flash_taken", False):
        _forget_flash(ctx, response, request.url.path)
    return response


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    _headers(response)
    return response


def flash(ctx: Context, viewer: Viewer, path: str, **values: Any) -> RedirectResponse:
    """Redirect to `path` after a POST, carrying what the POST made (a new API key, recovery
    codes) for that page to show once: reloading it, or going back, then neither repeats the
    POST nor shows the secret again. The values travel in a cookie for that path only, sealed
    (AES-GCM) and bound to this browser session; take_flash() reads them, render() drops it."""
    response = redirect(path)
    sealed = sealing.seal(ctx.secret_key, FLASH_COOKIE, str(viewer.web.id), json.dumps(values))
    response.set_cookie(
        FLASH_COOKIE,
        sealed,
        max_age=FLASH_MAX_AGE,
        path=path,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
    )
    return response


def take_flash(request: Request, viewer: Viewer) -> dict[str, Any]:
    """The values flash() sent to this page, once; empty when there are none."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return {}
    request.state.flash_taken = True
    plain = sealing.unseal(_ctx(request).secret_key, FLASH_COOKIE, str(viewer.web.id), raw)
    values = json.loads(plain) if plain is not None else None
    return values if isinstance(values, dict) else {}


def _forget_flash(ctx: Context, response: Response, path: str) -> None:
    response.delete_cookie(
        FLASH_COOKIE, path=path, httponly=True, samesite="lax", secure=ctx.settings.cookie_secure
    )


def _form_viewer(
    ctx: Context, session: Session, request: Request, csrf_token: str, target: str | None = None
) -> Viewer | Response:
    """The signed-in sender of a page's form, or what to answer instead: the sign-in page
    (then back to ``target``), or the error page when the form's CSRF token is wrong."""
    viewer = _viewer(ctx, session, request)
    if viewer is None:
        return _to_login(request, target)
    try:
        check_csrf(viewer.web, csrf_token)
    except DomainError as exc:
        return _error_page(request, exc, viewer)
    return viewer


def not_found_page(request: Request) -> HTMLResponse:
    """The page a browser gets at an address that leads nowhere (not the JSON API's answer),
    with the site's header for whoever is signed in."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
    message = t("There is no page at this address. Check the link, or start again from here.")
    return render(request, "error.html", status_code=404, message=message, viewer=viewer)


def server_error_page(request: Request) -> HTMLResponse:
    """The page a browser gets when the server failed (app.py's last handler): the sentence
    in the visitor's language, nothing about the failure, and no database read (it may be
    what failed)."""
    with i18n.use(i18n.locale_of(request.scope)):
        message = t(
            "Something went wrong on our side. Try again in a moment; if it keeps happening, "
            "tell the site's operator."
        )
        try:
            return render(request, "error.html", status_code=500, message=message)
        except Exception:  # the templates themselves: a bare page rather than none
            body = f"<!doctype html><title>500</title><p>{escape(message)}</p>"
            return HTMLResponse(body, status_code=500)


def too_large_page(request: Request, limit: int) -> HTMLResponse:
    """The page a web form gets when its body is over its route's bound (api/limits.py): the
    sentence in the visitor's language and a way back to the form they came from."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
    message = t(
        "The upload is larger than this page accepts ({mb} MB). Choose a smaller file, or "
        "fewer files at once, and try again.",
        mb=f"{limit // (1024 * 1024):,}",
    )
    return render(
        request,
        "error.html",
        status_code=413,
        message=message,
        viewer=viewer,
        back=_same_site_referer(request),
    )


def _same_site_referer(request: Request) -> str | None:
    """The path of the page a form was posted from, when it is one of ours."""
    referer = urlsplit(request.headers.get("referer", ""))
    if (referer.scheme, referer.netloc) != (request.url.scheme, request.url.netloc):
        return None
    path = _safe_next(referer.path)
    return f"{path}?{referer.query}" if referer.query else path


def _error_page(request: Request, exc: DomainError, viewer: Viewer | None = None) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status_code=exc.status_code,
        message=i18n.error_text(exc),
        viewer=viewer,
    )


def older_refused(request: Request, exc: DomainError, viewer: Viewer) -> HTMLResponse:
    """An "Older" link's `before` that is not one of the viewer's rows (someone else's, or
    made up): the page's own sentence, not the API's, which speaks of a Link header."""
    message = i18n.ERROR_MESSAGES["invalid_cursor"]  # _error_page translates it by its code
    return _error_page(
        request, DomainError(message, code=exc.code, status_code=exc.status_code), viewer
    )


def _csrf_failed() -> Forbidden:
    return Forbidden(
        t("The form expired or came from another site. Reload the page and try again."),
        code="csrf_failed",
    )


# Pre-session forms: signed double-submit cookie.


def _form_serializer(ctx: Context) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.secret_key, salt=FORM_SALT)


def _form_nonce(request: Request) -> str:
    nonce = request.cookies.get(FORM_COOKIE, "")
    if 16 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum():
        return nonce
    return secrets.token_urlsafe(24)


def _render_form(
    request: Request, template: str, /, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a pre-session form with a fresh signed token and (re)set its cookie. Links from
    emails (a password reset, an email change) also reach people who are signed in: their
    header stays the signed-in one."""
    ctx = _ctx(request)
    nonce = _form_nonce(request)
    response = render(
        request,
        template,
        status_code=status_code,
        form_token=_form_serializer(ctx).dumps(nonce),
        **{**_signed_in(ctx, request), **context},
    )
    response.set_cookie(
        FORM_COOKIE,
        nonce,
        max_age=FORM_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
    )
    return response


def _signed_in(ctx: Context, request: Request) -> dict[str, Any]:
    """The header's viewer and balance, for a page that signed-out people open too."""
    if not request.cookies.get(SESSION_COOKIE):
        return {}
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return {}
        return {"viewer": viewer, "balance": ledger.balance(session, viewer.user.id, ctx.now())}


def _check_form_token(request: Request, supplied: str) -> None:
    nonce = request.cookies.get(FORM_COOKIE)
    try:
        signed = _form_serializer(_ctx(request)).loads(supplied, max_age=FORM_MAX_AGE)
    except BadSignature:
        signed = None
    if not nonce or not isinstance(signed, str) or not secrets.compare_digest(signed, nonce):
        raise _csrf_failed()


def _set_session_cookie(ctx: Context, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ctx.settings.session_days * 24 * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
    )


def _clear_session_cookie(ctx: Context, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=ctx.settings.cookie_secure
    )


def _same_aspect(job: Job) -> bool:
    """Whether before and after can be overlaid (a crop changes the framing)."""
    if not job.result_width or not job.result_height:
        return True
    before = job.input_width / job.input_height
    after = job.result_width / job.result_height
    return abs(before - after) / before < 0.01


STATUS_LABELS = {
    "queued": N_("Queued"),
    "running": N_("Processing"),
    "succeeded": N_("Done"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
}
FORMAT_LABELS = {"png": "PNG", "jpg": "JPG", "webp": "WebP"}


def _status_label(status: str) -> str:
    return t(STATUS_LABELS.get(status, status))


def _format_label(job: Job) -> str:
    fmt = str((job.options or {}).get("format", "png"))
    return FORMAT_LABELS.get(fmt, fmt.upper())


def _js_strings() -> dict[str, Any]:
    """What the page's script says, translated on the server like everything else."""
    return {
        "uploading": t("Uploading… {pct}%"),
        "queued": t("Waiting for a free worker…"),
        "running": t("Removing the background…"),
        "failed": t("Something went wrong. Please try again."),
        "network": t("The connection was lost. Check your network and try again."),
        "tooLarge": t("The file is larger than {mb} MB. Choose a smaller file."),
        "notImage": t("Choose a JPG, PNG or WebP image."),
        "oneFile": t("Drop one photo at a time."),
        "signedOut": t("Your session has ended. Sign in again to continue."),
        "download": t("Download {format}"),
        "before": t("Before"),
        "after": t("After"),
        "beforeAlt": t("Before: the original photo"),
        "afterAlt": t("After: the photo with its background removed"),
        "compare": t(
            "Comparison: slide left to see more of the result, right to see more of the original"
        ),
        "meta": t("{width} × {height} px · {charged} credits charged"),  # noqa: RUF001
        "metaOne": t("{width} × {height} px · 1 credit charged"),  # noqa: RUF001
        # The workspace's queue of photos, zoom and recent jobs (workspace.html).
        "queueSummary": t("{done} of {total} photos finished"),
        "downloadShort": t("Download"),
        "downloadLabel": t("Download the result of {name}"),
        "show": t("Show"),
        "showLabel": t("Show {name} in the comparison"),
        "enlarge": t("Enlarge"),
        "enlargeLabel": t("Enlarge the result of {name}"),
        "bgImageMissing": t("Choose a background photo, or pick another background."),
        "filesUntil": t("Files deleted automatically after {when}"),
        "deleteNow": t("Delete now"),
        "deleteWhat": t("(the files of {name})"),
        "deleteConfirm": t("Delete the photo and result of this job now? This cannot be undone."),
        # The home page's try-out (web/trial.py).
        "trialLeft": t("{n} free tries left this hour."),
        "trialLeftOne": t("1 free try left this hour."),
        "trialLeftNone": t("No free tries left this hour. Sign up free to keep going."),
        "status": {k: t(v) for k, v in STATUS_LABELS.items()},
        "formats": FORMAT_LABELS,
        # By error code, for the English messages of the JSON API (see i18n.py): a script
        # shows `errors[body.error.code]` when there is one, else the API's own message.
        "errors": i18n.error_sentences(),
        "errorForms": i18n.error_forms(),
    }


def _job_error(job: Job) -> str:
    """Why a job failed, in the page's language."""
    if not job.error_message:
        return ""
    return i18n.error_text(job.error_message, job.error_code)


templates.env.globals.update(
    same_aspect=_same_aspect,
    status_label=_status_label,
    format_label=_format_label,
    job_error=_job_error,
)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:g} MP"


def price_parts(ranges: list[tuple[int, int | None]]) -> str:
    """Several prices by the result's size (`prices.price_ranges`) said in a line: "1 credit
    up to 25 MP, 2 credits over 25 MP"."""
    parts: list[str] = []
    below: str | None = None
    for credits, bound in ranges:
        limit = _megapixels(bound) if bound is not None else None
        if limit is not None:
            text = tn("1 credit up to {limit}", "{n} credits up to {limit}", credits, limit=limit)
        else:
            text = tn("1 credit over {limit}", "{n} credits over {limit}", credits, limit=below)
        parts.append(text)
        below = limit
    return t(", ").join(parts)


def photo_price(ranges: list[tuple[int, int | None]]) -> str:
    """The workspace's price line for one service: one price, or each by the result's size."""
    if len(ranges) == 1:
        return tn("one credit per photo", "{n} credits per photo", ranges[0][0])
    return t("per photo: {prices}", prices=price_parts(ranges))


def _photo_prices(session: Session) -> dict[str, str]:
    """What a photo of each service costs at the size the workspace asks for ("full": the
    photo's resolution, so by the photo's size where the tiers' prices differ), from the
    catalogue: operators change prices without a release, so pages never hard-code them."""
    found = {row.service for row in prices.catalogue(session)}
    return {
        service: photo_price(ranges)
        for service in sorted(found)
        if (ranges := prices.price_ranges(session, service, "full"))
    }


# The size tiers background removal is priced at (catalog/prices.py), as the home page names them.
_TIER_LABELS = [
    ("preview", "Preview (up to 0.25 MP)"),
    ("full", "Full size (up to 25 MP)"),
    ("50MP", "Over 25 MP (up to 50 MP)"),
]


def _home_price(session: Session) -> dict[str, Any]:
    """What the home page says a photo costs, from the catalogue: ``price``, the least a photo
    costs (None when background removal is not on sale), and ``tier_prices``, (translated tier
    label, credits) of each size tier where the tiers cost different amounts (empty where one price
    holds for every size, which the page then states alone)."""
    by_tier = {
        row.tier: row.credits
        for row in prices.catalogue(session)
        if row.service == "remove_background"
    }
    listed = [(t(label), by_tier[tier]) for tier, label in _TIER_LABELS if tier in by_tier]
    amounts = {credits for _, credits in listed}
    return {
        "price": min(amounts) if amounts else None,
        "tier_prices": listed if len(amounts) > 1 else [],
    }


# --- public pages ----------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is not None:
            return render(request, "home.html", viewer=viewer, **_home_price(session))
    return signed_out_home(request)


def signed_out_home(request: Request, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The home page with the try-out form (web/trial.py), which needs the pre-session token."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        price = _home_price(session)
    return _render_form(
        request,
        "home.html",
        status_code=status_code,
        **price,
        trial_limit=ctx.settings.trial_per_ip_per_hour,
        max_upload_bytes=ctx.settings.max_upload_bytes,
        **context,
    )


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    """The API reference (Swagger UI) from this site's own copy, under the pages' headers:
    FastAPI's page ran a CDN's latest Swagger UI 5.x, unpinned, on this origin, where a
    script can act as whoever is signed in (and it told the CDN about every visitor)."""
    return render(request, "api_docs.html")


@router.get("/register", response_class=HTMLResponse)
def register_form(request: Request) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        if _viewer(ctx, session, request) is not None:
            return redirect("/app")
    return _render_form(request, "register.html", email="")


@router.post("/register", response_class=HTMLResponse)
def register(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    try:
        _check_form_token(request, csrf_token)
        # The form says that creating an account accepts the current terms.
        address = flows.sign_up(
            ctx,
            email=email,
            password=password,
            ip=client_ip(request),
            user_agent=user_agent(request),
            accept_terms=True,
            locale=i18n.current(),
        )
    except DomainError as exc:
        return _render_form(
            request, "register.html", status_code=exc.status_code, email=email, error=exc
        )
    return render(
        request,
        "check_email.html",
        email=address,
        outbox=ctx.settings.mail_backend == "outbox",
    )


@router.get("/verify", response_class=HTMLResponse)
def verify(request: Request, token: str = "") -> Response:
    ctx = _ctx(request)
    if not token:
        return render(
            request,
            "verify.html",
            status_code=400,
            error=t("This confirmation link is incomplete. Copy the whole link from the email."),
            **_signed_in(ctx, request),
        )
    try:
        with ctx.db.transaction() as session:
            user = accounts.verify_email(
                session,
                ctx.secret_key,
                token,
                now=ctx.now(),
                signup_credits=ctx.settings.signup_credits,
                signup_credit_days=ctx.settings.signup_credit_days,
                ip=client_ip(request),
                signup_grants_per_ip_per_day=ctx.settings.signup_grants_per_ip_per_day,
            )
            credits = ledger.balance(session, user.id, ctx.now()).available
            email = user.email
            no_free_credits = ctx.settings.signup_credits > 0 and not free.signup_granted(
                session, user.id
            )
    except DomainError as exc:
        return render(
            request,
            "verify.html",
            status_code=exc.status_code,
            error=exc,
            **_signed_in(ctx, request),
        )
    # After the commit, so the header's balance has the sign-up credits in it.
    header = _signed_in(ctx, request)
    return render(
        request,
        "verify.html",
        email=email,
        credits=credits,
        no_free_credits=no_free_credits,
        signed_in=header.get("viewer") is not None and header["viewer"].user.email == email,
        **header,
    )


@router.post("/verify/resend", response_class=HTMLResponse)
def resend_verification(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, "/app")
        if not isinstance(viewer, Viewer):
            return viewer
        if not viewer.user.is_verified:
            accounts.send_verification(
                session, ctx.secret_key, ctx.settings.base_url, viewer.user, now=ctx.now()
            )
    return redirect("/app?sent=1")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "", reset: str = "") -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        if _viewer(ctx, session, request) is not None:
            return redirect(_safe_next(next))
    # A password reset ends every session and sends the person here (accounts/pages.py).
    notice = t("Your password was changed. Sign in with the new one.") if reset else None
    return _render_form(request, "login.html", email="", next=_safe_next(next), notice=notice)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    target = _safe_next(next)
    try:
        _check_form_token(request, csrf_token)
        # Throttling, 2FA, bans and new-device alerts live in accounts.flows.
        token = flows.sign_in(
            ctx,
            email=email,
            password=password,
            user_agent=user_agent(request),
            ip=client_ip(request),
        ).token
    except TwoFactorRequired as exc:
        return redirect(f"/login/2fa?pending={quote(exc.pending)}&next={quote(target, safe='/')}")
    except DomainError as exc:
        return _render_form(
            request,
            "login.html",
            status_code=exc.status_code,
            email=email,
            next=target,
            error=exc,
        )
    response = redirect(target)
    _set_session_cookie(ctx, response, token)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is not None:
            try:
                check_csrf(viewer.web, csrf_token)
            except DomainError as exc:
                return _error_page(request, exc, viewer)
            accounts.end_session(session, viewer.web, now=ctx.now())
    response = redirect("/")
    _clear_session_cookie(ctx, response)
    return response


# --- signed-in pages -----------------------------------------------------------------------


@router.get("/app", response_class=HTMLResponse)
def workspace(
    request: Request, sent: str = "", deleted: str = "", before: str | None = None
) -> Response:
    """The workspace; its job list shows RECENT_JOBS jobs, newest first, with an "Older jobs"
    link (`?before=<last job's id>`, the API's keyset) while older ones remain."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        balance = ledger.balance(session, viewer.user.id, ctx.now())
        try:
            recent, last = jobs_repo.page_for_user(
                session, viewer.user.id, limit=RECENT_JOBS, before=before
            )
        except DomainError as exc:
            return older_refused(request, exc, viewer)
        job_files = {job.id: _job_files(ctx, session, job) for job in recent}
        photo_prices = _photo_prices(session)
    return render(
        request,
        "workspace.html",
        viewer=viewer,
        balance=balance,
        prices=photo_prices,
        jobs=recent,
        older=last.id if last is not None else None,
        paged=before is not None,
        job_files=job_files,
        retention_hours=ctx.settings.retention_hours,
        sent=bool(sent),
        deleted=bool(deleted),
        max_mb=ctx.settings.max_upload_bytes // (1024 * 1024),
    )


def _job_files(ctx: Context, session: Session, job: Job) -> dict[str, datetime | None]:
    """When the retention sweep deletes a job's files, or when they were deleted."""
    deletion = privacy.deletion_of(session, job.id)
    return {
        "deleted_at": deletion.deleted_at if deletion is not None else None,
        "delete_after": job.created_at + timedelta(hours=ctx.settings.retention_hours),
    }


@router.post("/app/jobs/{job_id}/delete-files", response_class=HTMLResponse)
def delete_job_files(
    job_id: str, request: Request, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """The workspace's "Delete now": the job's original and result, before retention does."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, "/app")
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            job = jobs.get_for_user(session, viewer.user, job_id)
            keys = privacy.delete_job_files(session, job, now=ctx.now())
            privacy.delete_files(ctx.storage, keys)
        except DomainError as exc:
            return _error_page(request, exc, viewer)
    return redirect("/app?deleted=1#recent-title")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        balance = ledger.balance(session, viewer.user.id, ctx.now())
        try:
            job = jobs.get_for_user(session, viewer.user, job_id)
        except DomainError as exc:
            return _error_page(request, exc, viewer)
        charged = ledger.charged_for(session, jobs.job_reference(job.id))
        files = _job_files(ctx, session, job)
    return render(
        request,
        "job.html",
        viewer=viewer,
        balance=balance,
        job=job,
        charged=charged,
        files=files,
    )


def _api_keys_page(
    request: Request,
    ctx: Context,
    session: Session,
    viewer: Viewer,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    keys = list(accounts.list_api_keys(session, viewer.user))
    balance = ledger.balance(session, viewer.user.id, ctx.now())
    return render(
        request,
        "api_keys.html",
        status_code=status_code,
        viewer=viewer,
        balance=balance,
        keys=keys,
        key_names={key.id: accounts.shown_key_name(key.name) for key in keys},
        **context,
    )


@router.get("/account/api-keys", response_class=HTMLResponse)
def api_keys(request: Request, done: str = "") -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        notice = (
            t("The key was revoked. Requests that use it are now refused.")
            if (done == "revoked")
            else None
        )
        created = take_flash(request, viewer)
        return _api_keys_page(
            request,
            ctx,
            session,
            viewer,
            notice=notice,
            new_key=created.get("new_key"),
            new_key_name=accounts.shown_key_name(created.get("new_key_name") or ""),
        )


@router.post("/account/api-keys", response_class=HTMLResponse)
def create_api_key(
    request: Request,
    name: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request, "/account/api-keys")
        try:
            check_csrf(viewer.web, csrf_token)
            plaintext, key = accounts.create_api_key(session, viewer.user, name, now=ctx.now())
            notify.api_key_created(
                session,
                viewer.user,
                name=key.name,
                when=ctx.now(),
                not_me=flows.not_me_link(ctx, viewer.user),
            )
        except DomainError as exc:
            return _api_keys_page(
                request,
                ctx,
                session,
                viewer,
                status_code=exc.status_code,
                error=exc,
                name=name,
            )
        return flash(ctx, viewer, "/account/api-keys", new_key=plaintext, new_key_name=key.name)


@router.post("/account/api-keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_api_key(
    key_id: int, request: Request, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request, "/account/api-keys")
        try:
            check_csrf(viewer.web, csrf_token)
            accounts.revoke_api_key(session, viewer.user, key_id, now=ctx.now())
        except DomainError as exc:
            return _api_keys_page(
                request, ctx, session, viewer, status_code=exc.status_code, error=exc
            )
    return redirect("/account/api-keys?done=revoked")
