"""JSON API for the caller's own credits, promo codes, and the admins' price and promo tools."""

from __future__ import annotations

from fastapi import APIRouter, Request

from removeany.api.auth import require_admin, require_user
from removeany.api.contract import AUTH, errors
from removeany.context import Context
from removeany.credits import free
from removeany.credits.history import credits_view
from removeany.credits.schemas import CreditsOut, LotOut, PromoIn, PromoOut, RedeemIn

router = APIRouter(prefix="/api/v1", tags=["credits"])


@router.get("/credits", responses=errors(*AUTH), response_model=CreditsOut)
def credits(request: Request) -> CreditsOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        free.ensure_monthly_allowance(
            session, user.id, now=ctx.now(), credits=ctx.settings.monthly_free_credits
        )
        return credits_view(
            session, user.id, now=ctx.now(), warning_days=ctx.settings.expiry_warning_days
        )


@router.post(
    "/credits/redeem",
    responses=errors(*AUTH, 404, 409, 410, 429, 503),
    status_code=201,
    response_model=LotOut,
)
def redeem(body: RedeemIn, request: Request) -> LotOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        user_id, email = user.id, user.email
        free.count_redemption_attempt(session, user_id, now=ctx.now())
    with ctx.db.transaction() as session:
        lot = free.redeem_promo(session, user_id, body.code, email=email, now=ctx.now())
        return LotOut.model_validate(lot, from_attributes=True)


@router.post(
    "/admin/promo-codes",
    responses=errors(*AUTH, 400, 409),
    status_code=201,
    response_model=PromoOut,
)
def create_promo(body: PromoIn, request: Request) -> PromoOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        admin = require_admin(ctx, session, request)
        promo = free.create_promo(
            session,
            body.code,
            credits=body.credits,
            max_uses=body.max_uses,
            credit_days=body.credit_days,
            redeem_by=body.redeem_by,
            now=ctx.now(),
            admin_id=admin.id,
        )
        return PromoOut.model_validate(promo, from_attributes=True)


@router.post(
    "/admin/promo-codes/{code}/close", responses=errors(*AUTH, 404), response_model=PromoOut
)
def close_promo(code: str, request: Request) -> PromoOut:
    """No more redemptions from now on; credits already redeemed stay."""
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        require_admin(ctx, session, request)
        return PromoOut.model_validate(
            free.close_promo(session, code, now=ctx.now()), from_attributes=True
        )
