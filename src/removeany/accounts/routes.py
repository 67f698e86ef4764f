"""JSON API for accounts: register, verify, who am I, API keys."""

from __future__ import annotations

from fastapi import APIRouter, Request

from removeany.accounts import flows, notify
from removeany.accounts import service as accounts
from removeany.accounts.models import ApiKey, User
from removeany.accounts.schemas import (
    Accepted,
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    RegisterIn,
    UserOut,
    VerifyIn,
)
from removeany.api.auth import client_ip, require_browser_user, require_user, user_agent
from removeany.api.contract import AUTH, errors
from removeany.api.params import RowId
from removeany.context import Context

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        verified=user.is_verified,
        is_admin=user.is_admin,
        created_at=user.created_at,
        status=user.status,
        two_factor=user.has_2fa,
    )


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@router.post(
    "/auth/register", responses=errors(400, 429, 503), status_code=202, response_model=Accepted
)
def register(body: RegisterIn, request: Request) -> Accepted:
    """Create an account and email a confirmation link. The answer is the same whether or
    not the address already has an account (its owner is emailed instead)."""
    ctx: Context = request.app.state.ctx
    address = flows.sign_up(
        ctx,
        email=body.email,
        password=body.password,
        ip=client_ip(request),
        user_agent=user_agent(request),
        accept_terms=body.accept_terms,
    )
    return Accepted(message=f"We sent an email to {address}. Open the link in it to continue.")


@router.post("/auth/verify", responses=errors(400), response_model=UserOut)
def verify(body: VerifyIn, request: Request) -> UserOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = accounts.verify_email(
            session,
            ctx.secret_key,
            body.token,
            now=ctx.now(),
            signup_credits=ctx.settings.signup_credits,
            signup_credit_days=ctx.settings.signup_credit_days,
            ip=client_ip(request),
            signup_grants_per_ip_per_day=ctx.settings.signup_grants_per_ip_per_day,
        )
        return user_out(user)


@router.get("/me", responses=errors(*AUTH), response_model=UserOut)
def me(request: Request) -> UserOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        return user_out(require_user(ctx, session, request))


@router.get("/api-keys", responses=errors(*AUTH), response_model=list[ApiKeyOut])
def list_keys(request: Request) -> list[ApiKeyOut]:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        return [key_out(k) for k in accounts.list_api_keys(session, user)]


@router.post("/api-keys", responses=errors(*AUTH), status_code=201, response_model=ApiKeyCreated)
def create_key(body: ApiKeyIn, request: Request) -> ApiKeyCreated:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_browser_user(ctx, session, request)
        plaintext, key = accounts.create_api_key(session, user, body.name, now=ctx.now())
        notify.api_key_created(
            session,
            user,
            name=key.name,
            when=ctx.now(),
            not_me=flows.not_me_link(ctx, user),
        )
        return ApiKeyCreated(key=plaintext, **key_out(key).model_dump())


@router.delete("/api-keys/{key_id}", responses=errors(*AUTH, 404), response_model=ApiKeyOut)
def revoke_key(key_id: RowId, request: Request) -> ApiKeyOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_browser_user(ctx, session, request)
        return key_out(accounts.revoke_api_key(session, user, key_id, now=ctx.now()))
