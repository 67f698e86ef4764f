"""JSON API for the terms: read the current version, accept it; admins publish new ones."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from removeany.api.auth import client_ip, require_admin, require_user, user_agent
from removeany.api.contract import AUTH, errors
from removeany.api.params import RowId
from removeany.context import Context
from removeany.legal import service as legal
from removeany.moderation.audit import Actor

router = APIRouter(prefix="/api/v1", tags=["terms"])


class TermsOut(BaseModel):
    version: int
    summary: str
    published_at: datetime
    terms_en: str
    terms_zh: str
    privacy_en: str
    privacy_zh: str
    url: str


class AcceptIn(BaseModel):
    version: int = Field(ge=1, le=1_000_000)


class AcceptanceOut(BaseModel):
    version: int
    accepted_at: datetime
    current_version: int
    accepted_current: bool


class PublishIn(BaseModel):
    summary: str = Field(max_length=2000)
    terms_en: str = Field(max_length=200_000)
    terms_zh: str = Field(max_length=200_000)
    privacy_en: str = Field(max_length=200_000)
    privacy_zh: str = Field(max_length=200_000)


def terms_out(ctx: Context, terms: legal.Terms) -> TermsOut:
    base = ctx.settings.base_url
    return TermsOut(
        version=terms.version,
        summary=terms.summary,
        published_at=terms.published_at,
        terms_en=legal.render(terms.terms_en, ctx.settings),
        terms_zh=legal.render(terms.terms_zh, ctx.settings),
        privacy_en=legal.render(terms.privacy_en, ctx.settings),
        privacy_zh=legal.render(terms.privacy_zh, ctx.settings),
        url=f"{base.rstrip('/')}/legal/terms?version={terms.version}",
    )


@router.get("/legal/current", response_model=TermsOut)
def current_terms(request: Request) -> TermsOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        return terms_out(ctx, legal.current(session))


@router.get("/legal/versions/{version}", responses=errors(404), response_model=TermsOut)
def terms_version(version: RowId, request: Request) -> TermsOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        return terms_out(ctx, legal.get(session, version))


@router.get("/legal/acceptance", responses=errors(*AUTH), response_model=AcceptanceOut | None)
def my_acceptance(request: Request) -> AcceptanceOut | None:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        rows = legal.acceptances(session, user.id)
        current = legal.current(session).version
        if not rows:
            return None
        last = rows[-1]
        return AcceptanceOut(
            version=last.version,
            accepted_at=last.accepted_at,
            current_version=current,
            accepted_current=last.version == current,
        )


@router.post("/legal/accept", responses=errors(*AUTH, 409), response_model=AcceptanceOut)
def accept_terms(body: AcceptIn, request: Request) -> AcceptanceOut:
    """Accept the current version (send its number, so you accept what you read). Recorded
    with the time and your IP address."""
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        row = legal.accept(
            session,
            user,
            body.version,
            now=ctx.now(),
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return AcceptanceOut(
            version=row.version,
            accepted_at=row.accepted_at,
            current_version=row.version,
            accepted_current=True,
        )


@router.post(
    "/admin/legal",
    responses=errors(*AUTH, 400),
    status_code=201,
    response_model=TermsOut,
    tags=["admin"],
)
def publish_terms(body: PublishIn, request: Request) -> TermsOut:
    """Publish a new version: every user is emailed, sees a banner, and must accept it before
    the next job."""
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        admin = require_admin(ctx, session, request)
        terms = legal.publish(
            session,
            Actor(admin.id, admin.email),
            summary=body.summary,
            terms_en=body.terms_en,
            terms_zh=body.terms_zh,
            privacy_en=body.privacy_en,
            privacy_zh=body.privacy_zh,
            now=ctx.now(),
        )
        legal.notify_users(session, terms, base_url=ctx.settings.base_url, now=ctx.now())
    return terms_out(ctx, terms)
