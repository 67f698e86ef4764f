"""Web pages for the terms: read any version in English or Chinese, accept the current one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from removeany import i18n
from removeany.api.auth import client_ip, user_agent
from removeany.api.params import OptionalRowIdQuery
from removeany.errors import DomainError
from removeany.i18n import N_
from removeany.legal import service as legal
from removeany.web.routes import (
    Viewer,
    _ctx,
    _error_page,
    _form_viewer,
    _safe_next,
    _to_login,
    _viewer,
    redirect,
    render,
)

router = APIRouter(include_in_schema=False)

Block = tuple[str, str | list[str]]
TITLES = {"terms": N_("Terms of Service"), "privacy": N_("Privacy Policy")}


def document_locale(lang: str) -> str:
    """The language a legal text is shown in: the site's language (i18n.py: `?lang=`,
    the `lang` cookie, Accept-Language). Older links with `?lang=zh` still show the Chinese
    text, without switching the rest of the site."""
    asked = lang.strip().lower()
    if asked.startswith("zh"):
        return "zh-CN"
    if asked.startswith("en"):
        return "en"
    return i18n.current()


def blocks(text: str) -> list[Block]:
    """`## ` headings, `- ` list items and paragraphs; rendered by the template, escaped."""
    out: list[Block] = []
    items: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("- "):
            items.append(line[2:])
            continue
        if items:
            out.append(("ul", items))
            items = []
        if line.startswith("## "):
            out.append(("h2", line[3:]))
        elif line:
            out.append(("p", line))
    if items:
        out.append(("ul", items))
    return out


def _doc(request: Request, which: str, version: int | None, lang: str) -> Response:
    ctx = _ctx(request)
    doc_locale = document_locale(lang)
    try:
        with ctx.db.transaction() as session:
            viewer = _viewer(ctx, session, request)
            terms = legal.get(session, version) if version else legal.current(session)
            current = legal.current(session).version
            all_versions = [v.version for v in legal.versions(session)]
            # The site's banner is not shown on these pages: someone reading the version they
            # are asked to accept gets the way to accept it here.
            to_accept = viewer is not None and (
                terms.version == current
                and legal.accepted_version(session, viewer.user.id) != current
            )
    except DomainError as exc:
        return _error_page(request, exc)
    text = getattr(terms, f"{which}_{'zh' if doc_locale == 'zh-CN' else 'en'}")
    return render(
        request,
        "legal_document.html",
        viewer=viewer,
        which=which,
        doc_locale=doc_locale,
        doc_title=i18n.translate(TITLES[which], doc_locale),
        terms=terms,
        current=current,
        versions=all_versions,
        to_accept=to_accept,
        blocks=blocks(legal.render(text, ctx.settings)),
    )


@router.get("/legal/terms", response_class=HTMLResponse)
def terms_page(request: Request, version: OptionalRowIdQuery = None, lang: str = "") -> Response:
    return _doc(request, "terms", version, lang)


@router.get("/legal/privacy", response_class=HTMLResponse)
def privacy_page(request: Request, version: OptionalRowIdQuery = None, lang: str = "") -> Response:
    return _doc(request, "privacy", version, lang)


@router.get("/legal/accept", response_class=HTMLResponse)
def accept_form(request: Request, next: str = "") -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        terms = legal.current(session)
        accepted = legal.accepted_version(session, viewer.user.id)
    return render(
        request,
        "legal_accept.html",
        viewer=viewer,
        terms=terms,
        summary=legal.summary_shown(terms),
        accepted=accepted,
        next=_safe_next(next),
    )


@router.post("/legal/accept", response_class=HTMLResponse)
def accept(
    request: Request,
    version: Annotated[int, Form()] = 0,
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, "/legal/accept")
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            legal.accept(
                session,
                viewer.user,
                version,
                now=ctx.now(),
                ip=client_ip(request),
                user_agent=user_agent(request),
            )
        except DomainError as exc:
            return _error_page(request, exc, viewer)
    return redirect(_safe_next(next))
