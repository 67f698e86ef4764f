"""JSON API for the price list (public) and price changes (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from removeany.api.auth import require_admin
from removeany.api.contract import AUTH, errors
from removeany.catalog import prices
from removeany.catalog.schemas import PriceIn, PriceOut
from removeany.context import Context

router = APIRouter(prefix="/api/v1", tags=["prices"])


@router.get(
    "/prices",
    response_model=list[PriceOut],
    description="The current price of each service at each size tier (preview, full, 50MP), "
    f"in credits per image; an ID photo has one price, its full one. {prices.PRICING_RULE}",
)
def list_prices(request: Request) -> list[PriceOut]:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        return [PriceOut.model_validate(p, from_attributes=True) for p in prices.catalogue(session)]


@router.put("/admin/prices", responses=errors(*AUTH, 400), response_model=PriceOut)
def set_price(body: PriceIn, request: Request) -> PriceOut:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        admin = require_admin(ctx, session, request)
        price = prices.set_price(
            session,
            body.service,
            body.tier,
            body.credits,
            now=ctx.now(),
            admin_id=admin.id,
            note=body.note,
        )
        return PriceOut.model_validate(price, from_attributes=True)
