"""JSON API for buying credits, and the Stripe webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from sqlalchemy.exc import IntegrityError

from removeany.api.auth import require_user
from removeany.api.contract import AUTH, errors
from removeany.billing import service as billing
from removeany.billing.models import Order
from removeany.billing.providers import (
    PaymentProvider,
    SandboxProvider,
    StripeProvider,
    verify_stripe_signature,
)
from removeany.billing.schemas import CheckoutIn, OrderOut, PackOut
from removeany.context import Context
from removeany.errors import DomainError

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


def provider_for(ctx: Context) -> PaymentProvider:
    s = ctx.settings
    if s.payment_provider == "stripe":
        if not s.stripe_secret_key:
            raise DomainError(
                "Payments are not configured on this server.",
                code="payments_unavailable",
                status_code=503,
            )
        return StripeProvider(s.stripe_secret_key, s.stripe_api_base)
    return SandboxProvider()


def order_out(order: Order) -> OrderOut:
    return OrderOut.model_validate(order, from_attributes=True)


@router.get("/packs", response_model=list[PackOut])
def list_packs(request: Request) -> list[PackOut]:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        return [PackOut.model_validate(p, from_attributes=True) for p in billing.packs(session)]


@router.post(
    "/checkout", responses=errors(*AUTH, 400, 404, 409), status_code=201, response_model=OrderOut
)
def checkout(
    body: CheckoutIn,
    request: Request,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> OrderOut:
    ctx: Context = request.app.state.ctx
    provider = provider_for(ctx)
    try:
        with ctx.db.transaction() as session:
            user = require_user(ctx, session, request)
            return order_out(
                billing.start_purchase(
                    session,
                    provider,
                    user,
                    body.pack,
                    base_url=ctx.settings.base_url,
                    now=ctx.now(),
                    idempotency_key=idempotency_key,
                )
            )
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer with its order.
        with ctx.db.transaction() as session:
            user = require_user(ctx, session, request)
            return order_out(
                billing.start_purchase(
                    session,
                    provider,
                    user,
                    body.pack,
                    base_url=ctx.settings.base_url,
                    now=ctx.now(),
                    idempotency_key=idempotency_key,
                )
            )


@router.get("/orders", responses=errors(*AUTH), response_model=list[OrderOut])
def list_orders(request: Request) -> list[OrderOut]:
    ctx: Context = request.app.state.ctx
    with ctx.db.transaction() as session:
        user = require_user(ctx, session, request)
        return [order_out(o) for o in billing.orders(session, user)]


@router.post("/webhooks/stripe", include_in_schema=False)
async def stripe_webhook(request: Request) -> dict[str, str]:
    ctx: Context = request.app.state.ctx
    secret = ctx.settings.stripe_webhook_secret
    if not secret:
        raise DomainError(
            "Stripe webhooks are not configured.", code="payments_unavailable", status_code=503
        )
    payload = await request.body()
    event = verify_stripe_signature(
        payload, request.headers.get("stripe-signature", ""), secret, now=ctx.now()
    )
    try:
        with ctx.db.transaction() as session:
            outcome = billing.record_stripe_event(
                session,
                event,
                payload,
                now=ctx.now(),
                credit_days=ctx.settings.paid_credit_days,
            )
    except IntegrityError:
        outcome = "duplicate"
    return {"received": outcome}
