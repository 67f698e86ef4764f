"""Admin JSON API (users, credits, services, announcements, audit log) and the public
service status and announcements."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from removeany.accounts.models import User
from removeany.api.auth import require_admin
from removeany.api.contract import AUTH, errors
from removeany.api.params import OptionalRowIdQuery, RowId
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.moderation import audit
from removeany.moderation import service as moderation
from removeany.moderation.audit import Actor
from removeany.moderation.models import Announcement, ServiceStatus
from removeany.privacy import service as privacy

router = APIRouter(prefix="/api/v1", tags=["admin"])
public = APIRouter(prefix="/api/v1", tags=["service status"])


class AdminUserOut(BaseModel):
    id: int
    email: str
    status: str
    status_reason: str | None
    is_admin: bool
    verified: bool
    two_factor: bool
    locked: bool
    created_at: datetime
    deleted_at: datetime | None
    credits_available: int


class ReasonIn(BaseModel):
    reason: str = Field(max_length=2000)


class CreditsIn(BaseModel):
    amount: int = Field(
        description="Positive grants, negative revokes.", ge=-1_000_000, le=1_000_000
    )
    reason: str = Field(max_length=2000)
    days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Days a grant lasts; the server's REMOVEANY_ADMIN_CREDIT_DAYS when left out.",
    )


class GrantedLotOut(BaseModel):
    lot_id: int
    amount: int
    expires_at: datetime = Field(
        description="When the lot's unused credits expire: the grant's `days` from now, or "
        "the server's REMOVEANY_ADMIN_CREDIT_DAYS."
    )


class CreditsAdjustedOut(AdminUserOut):
    granted: GrantedLotOut | None = Field(
        description="The lot a grant created; null when credits were revoked."
    )


class ServiceStatusIn(BaseModel):
    status: str = Field(description="active, suspended or disabled", max_length=20)
    message: str = Field(default="", max_length=2000)
    reason: str = Field(max_length=2000)


class ServiceStatusOut(BaseModel):
    service: str
    status: str
    message: str
    updated_at: datetime


class AnnouncementIn(BaseModel):
    message: str = Field(max_length=2000)
    level: str = Field(default="info", max_length=20)
    ends_at: datetime | None = None


class AnnouncementOut(BaseModel):
    id: int
    message: str
    level: str
    starts_at: datetime
    ends_at: datetime | None


class AuditOut(BaseModel):
    id: int
    created_at: datetime
    actor: str
    action: str
    target_user_id: int | None
    target: str
    reason: str
    details: dict[str, Any]


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def admin_user_out(ctx: Context, session: Any, user: User) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        email=user.email,
        status=user.status,
        status_reason=user.status_reason,
        is_admin=user.is_admin,
        verified=user.is_verified,
        two_factor=user.has_2fa,
        locked=user.locked_at is not None,
        created_at=user.created_at,
        deleted_at=user.deleted_at,
        credits_available=ledger.balance(session, user.id, ctx.now()).available,
    )


def status_out(row: ServiceStatus) -> ServiceStatusOut:
    return ServiceStatusOut(
        service=row.service, status=row.status, message=row.message, updated_at=row.updated_at
    )


def announcement_out(row: Announcement) -> AnnouncementOut:
    return AnnouncementOut(
        id=row.id,
        message=row.message,
        level=row.level,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


def audit_out(row: audit.Line) -> AuditOut:
    return AuditOut(
        id=row.id,
        created_at=row.created_at,
        actor=row.actor,
        action=row.action,
        target_user_id=row.target_user_id,
        target=row.target,
        reason=row.reason,
        details=row.details or {},
    )


@router.get("/admin/users", responses=errors(*AUTH), response_model=list[AdminUserOut])
def search_users(
    request: Request,
    q: str = "",
    status: str = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AdminUserOut]:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        require_admin(ctx, session, request)
        return [
            admin_user_out(ctx, session, u)
            for u in moderation.search_users(session, q[:320], status=status[:20], limit=limit)
        ]


@router.get("/admin/users/{user_id}", responses=errors(*AUTH, 404), response_model=AdminUserOut)
def get_user(user_id: RowId, request: Request) -> AdminUserOut:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        require_admin(ctx, session, request)
        return admin_user_out(ctx, session, moderation.find_user(session, user_id))


def _act(request: Request, user_id: int, action: str, reason: str) -> AdminUserOut:
    ctx = _ctx(request)
    keys: list[str] = []
    with ctx.db.transaction() as session:
        admin = require_admin(ctx, session, request)
        actor = Actor(admin.id, admin.email)
        user = moderation.find_user(session, user_id)
        if action == "restrict":
            moderation.restrict(session, actor, user, reason, now=ctx.now())
        elif action == "ban":
            moderation.ban(session, actor, user, reason, now=ctx.now())
        elif action == "reinstate":
            moderation.reinstate(session, actor, user, reason, now=ctx.now())
        else:
            keys = moderation.delete_user(session, actor, user, reason, now=ctx.now())
        out = admin_user_out(ctx, session, user)
        privacy.delete_files(ctx.storage, keys)
    return out


@router.post(
    "/admin/users/{user_id}/restrict",
    responses=errors(*AUTH, 400, 404, 409),
    response_model=AdminUserOut,
)
def restrict_user(user_id: RowId, body: ReasonIn, request: Request) -> AdminUserOut:
    """No processing: job submission answers 403 `account_restricted`."""
    return _act(request, user_id, "restrict", body.reason)


@router.post(
    "/admin/users/{user_id}/ban",
    responses=errors(*AUTH, 400, 404, 409),
    response_model=AdminUserOut,
)
def ban_user(user_id: RowId, body: ReasonIn, request: Request) -> AdminUserOut:
    """No sign-in; all sessions and API keys revoked."""
    return _act(request, user_id, "ban", body.reason)


@router.post(
    "/admin/users/{user_id}/reinstate",
    responses=errors(*AUTH, 400, 404, 409),
    response_model=AdminUserOut,
)
def reinstate_user(user_id: RowId, body: ReasonIn, request: Request) -> AdminUserOut:
    return _act(request, user_id, "reinstate", body.reason)


@router.post(
    "/admin/users/{user_id}/delete",
    responses=errors(*AUTH, 400, 404, 409),
    response_model=AdminUserOut,
)
def delete_user(user_id: RowId, body: ReasonIn, request: Request) -> AdminUserOut:
    """Erase the account's images and personal data; the ledger stays, anonymised."""
    return _act(request, user_id, "delete", body.reason)


@router.post(
    "/admin/users/{user_id}/credits",
    responses=errors(*AUTH, 400, 404, 409),
    response_model=CreditsAdjustedOut,
)
def adjust_credits(user_id: RowId, body: CreditsIn, request: Request) -> CreditsAdjustedOut:
    """Grant credits (a new lot, which expires) or revoke them (from the user's lots in spend
    order); answers the user with their new balance and, for a grant, the lot and its expiry."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        admin = require_admin(ctx, session, request)
        actor = Actor(admin.id, admin.email)
        user = moderation.find_user(session, user_id)
        granted = None
        if body.amount >= 0:
            lot = moderation.grant_credits(
                session,
                actor,
                user,
                body.amount,
                body.reason,
                now=ctx.now(),
                days=body.days or ctx.settings.admin_credit_days,
            )
            granted = GrantedLotOut(lot_id=lot.id, amount=lot.amount, expires_at=lot.expires_at)
        else:
            moderation.revoke_credits(
                session, actor, user, -body.amount, body.reason, now=ctx.now()
            )
        return CreditsAdjustedOut(
            **admin_user_out(ctx, session, user).model_dump(), granted=granted
        )


@router.get("/admin/audit", responses=errors(*AUTH), response_model=list[AuditOut])
def audit_log(
    request: Request,
    q: str = "",
    user_id: OptionalRowIdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        require_admin(ctx, session, request)
        return [
            audit_out(e)
            for e in audit.entries(session, query=q[:320], user_id=user_id, limit=limit)
        ]


@router.put(
    "/admin/services/{service}", responses=errors(*AUTH, 400), response_model=ServiceStatusOut
)
def set_service(service: str, body: ServiceStatusIn, request: Request) -> ServiceStatusOut:
    """Suspend (temporarily) or disable a service, with the message users will see; new jobs
    get 503 `service_suspended` / `service_disabled`. `active` turns it back on."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        admin = require_admin(ctx, session, request)
        row = moderation.set_service_status(
            session,
            Actor(admin.id, admin.email),
            service,
            body.status,
            body.message,
            body.reason,
            now=ctx.now(),
        )
        return status_out(row)


@router.post(
    "/admin/announcements",
    responses=errors(*AUTH, 400),
    status_code=201,
    response_model=AnnouncementOut,
)
def create_announcement(body: AnnouncementIn, request: Request) -> AnnouncementOut:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        admin = require_admin(ctx, session, request)
        row = moderation.announce(
            session,
            Actor(admin.id, admin.email),
            body.message,
            now=ctx.now(),
            level=body.level,
            ends_at=body.ends_at,
        )
        return announcement_out(row)


@router.delete(
    "/admin/announcements/{announcement_id}", responses=errors(*AUTH, 404), status_code=204
)
def withdraw_announcement(announcement_id: RowId, request: Request) -> None:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        admin = require_admin(ctx, session, request)
        moderation.withdraw(session, Actor(admin.id, admin.email), announcement_id, now=ctx.now())


@public.get("/service-status", response_model=list[ServiceStatusOut])
def service_status(request: Request) -> list[ServiceStatusOut]:
    """Services that are not simply active, with the operator's message."""
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        return [status_out(r) for r in moderation.service_statuses(session) if r.status != "active"]


@public.get("/announcements", response_model=list[AnnouncementOut])
def announcements(request: Request) -> list[AnnouncementOut]:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        return [announcement_out(a) for a in moderation.current_announcements(session, ctx.now())]
