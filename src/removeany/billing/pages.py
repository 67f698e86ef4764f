"""Web pages for credits and buying them: the credits page (balance, lots, history, promo
codes, packs for sale, orders), order receipts, and the sandbox provider's test checkout.

Thin: parse the form, call the credits and billing services in one transaction, render.
Each action runs in a savepoint, so a refused action leaves nothing behind while the page that
explains the refusal is still rendered from the same transaction."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from removeany import i18n
from removeany.accounts.models import User
from removeany.billing import service as billing
from removeany.billing.models import Order
from removeany.billing.providers import PaymentProvider
from removeany.billing.routes import provider_for
from removeany.context import Context
from removeany.credits import free
from removeany.credits import service as ledger
from removeany.credits.history import credits_view
from removeany.credits.schemas import CreditsOut, EntryOut
from removeany.errors import DomainError, NotFound
from removeany.web.routes import (
    Viewer,
    _ctx,
    _error_page,
    _form_viewer,
    _to_login,
    _viewer,
    redirect,
    render,
    t,
    tn,
)

router = APIRouter(include_in_schema=False)

LOT_KINDS = {
    "signup": "Sign-up gift",
    "monthly": "Free monthly",
    "promo": "Promo",
    "purchase": "Paid",
    "admin": "Admin",
}
ORDER_STATUSES = {
    "pending": "Awaiting payment",
    "paid": "Paid",
    "cancelled": "Cancelled",
    "expired": "Expired",
    "disputed": "Under review",
    "refunded": "Refunded",
    "partly_refunded": "Partly refunded",
}
ORDER_BADGES = {
    "paid": "succeeded",
    "pending": "queued",
    "disputed": "failed",
    "refunded": "failed",
    "partly_refunded": "failed",
}


def _pack_names(session: Session, placed: Sequence[Order]) -> dict[int, str]:
    names = billing.pack_names(session, placed)
    return {pack_id: billing.shown_pack_name(name) for pack_id, name in names.items()}


def _lot_kind(source: str) -> str:
    return t(LOT_KINDS.get(source, source.capitalize()))


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency.upper()}"


def _reason(entry: EntryOut) -> str:
    """One ledger entry in words."""
    ref = entry.reference
    if entry.kind == "grant":
        if ref == "signup":
            reason = t("Free credits for signing up")
        elif ref.startswith("monthly:"):
            reason = t("Free credits for {month}", month=ref.removeprefix("monthly:"))
        elif ref.startswith("promo:"):
            reason = t("Promo code {code}", code=ref.removeprefix("promo:"))
        elif ref.startswith("admin:"):
            reason = t("Added by an administrator")
        else:
            reason = t("Credits added")
    elif entry.kind == "purchase":
        reason = t("Credit pack bought")
    elif entry.kind == "reserve":
        reason = t("Held while a job runs")
    elif entry.kind == "capture":
        reason = t("Held credits spent on a finished job")
    elif entry.kind == "release":
        reason = t("Held credits returned: the job did not finish")
    elif entry.kind == "expire":
        reason = t("Unused credits expired")
    elif entry.kind == "revoke":
        if ref.startswith("admin:"):
            reason = t("Removed by an administrator")
        elif ref == "account deleted":
            reason = t("Removed: the account was deleted")
        else:
            reason = t("Credits removed")
    elif entry.kind == "refund":
        reason = t("Order refunded: its unspent credits were taken back")
    elif entry.kind == "chargeback":
        reason = t("Payment disputed with your bank: the order's unspent credits were taken back")
    elif entry.kind == "adjust":
        reason = t("Correction")
    else:
        reason = entry.kind
    return f"{reason} ({entry.note})" if entry.note else reason


def _order_note(order: Order) -> str | None:
    """What happened to a refunded or disputed order's credits, for its receipt."""
    if order.review_reason == "chargeback":
        return t(
            "The payment was disputed with your bank. The credits of this order that were "
            "not spent yet were taken back; credits already spent stay spent."
        )
    if order.status in ("refunded", "partly_refunded"):
        return t(
            "The payment was refunded. The credits it paid for that were not spent yet were "
            "taken back; credits already spent stay spent."
        )
    return None


def _order_rows(session: Session, placed: Sequence[Order]) -> list[dict[str, Any]]:
    names = _pack_names(session, placed)
    rows = []
    for order in placed:
        rows.append(
            {
                **billing.receipt(order),
                "pack": names.get(order.pack_id, ""),
                "created_at": order.created_at,
                "status_label": t(ORDER_STATUSES.get(order.status, order.status)),
                "badge": ORDER_BADGES.get(order.status, ""),
                "note": _order_note(order),
                "checkout_url": order.checkout_url if order.status == "pending" else None,
            }
        )
    return rows


def _flash(session: Session, user: User, paid: str, cancelled: str) -> str | None:
    """The sentence shown after coming back from a checkout."""
    order_id = paid or cancelled
    if not order_id:
        return None
    try:
        order = billing.order_for_user(session, user, order_id)
    except NotFound:
        return None
    if order.status == "paid":
        return tn(
            "Payment received: 1 credit was added to your balance.",
            "Payment received: {credits} credits were added to your balance.",
            order.credits,
            credits=order.credits,
        )
    if order.status == "pending" and paid:
        return t(
            "We are waiting for the payment provider to confirm your payment. "
            "The credits appear here as soon as it does."
        )
    if order.status in ("pending", "cancelled", "expired"):
        return t("The checkout was cancelled. Nothing was charged.")
    return None


def _promo_notice(view: CreditsOut, redeemed: str) -> str | None:
    """What the redeem form's redirect says: the promo lot it added (`?redeemed=LOT_ID`)."""
    promos = (lot for lot in view.lots if lot.source == "promo")
    lot = next((lot for lot in promos if str(lot.id) == redeemed), None)
    if lot is None:
        return None
    return tn(
        "The promo code added 1 credit. It expires on {date}.",
        "The promo code added {credits} credits. They expire on {date}.",
        lot.amount,
        credits=lot.amount,
        date=lot.expires_at.strftime("%Y-%m-%d"),
    )


def _credits_page(
    request: Request,
    ctx: Context,
    session: Session,
    viewer: Viewer,
    *,
    status_code: int = 200,
    redeemed: str = "",
    **context: Any,
) -> HTMLResponse:
    now = ctx.now()
    settings = ctx.settings
    free.ensure_monthly_allowance(
        session, viewer.user.id, now=now, credits=settings.monthly_free_credits
    )
    view = credits_view(session, viewer.user.id, now=now, warning_days=settings.expiry_warning_days)
    soon_ids = {lot.id for lot in view.expiring_soon}
    expiring = sum(lot.remaining for lot in view.expiring_soon)
    first_expiry: datetime | None = min(
        (lot.expires_at for lot in view.expiring_soon), default=None
    )
    entries = [
        {
            "entry": entry,
            "reason": _reason(entry),
            "lot": t("{kind} #{id}", kind=_lot_kind(entry.lot_source), id=entry.lot_id),
        }
        for entry in view.entries
    ]
    packs = [
        {
            "pack": pack,
            "name": billing.shown_pack_name(pack.name),
            "price": _money(pack.price_cents, pack.currency),
            # One key per rendered form: submitting it twice buys once.
            "key": secrets.token_urlsafe(18),
        }
        for pack in billing.packs(session)
    ]
    return render(
        request,
        "credits.html",
        status_code=status_code,
        viewer=viewer,
        balance=ledger.balance(session, viewer.user.id, now),
        view=view,
        lots=[
            {"lot": lot, "kind": _lot_kind(lot.source), "soon": lot.id in soon_ids}
            for lot in view.lots
        ],
        entries=entries,
        expiring=expiring,
        first_expiry=first_expiry,
        warning_days=settings.expiry_warning_days,
        packs=packs,
        orders=_order_rows(session, billing.orders(session, viewer.user)),
        test_mode=settings.payment_provider == "sandbox",
        promo_notice=_promo_notice(view, redeemed),
        **context,
    )


# --- the credits page ------------------------------------------------------------------------


@router.get("/credits", response_class=HTMLResponse)
def credits_page(
    request: Request, paid: str = "", cancelled: str = "", redeemed: str = ""
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        notice = _flash(session, viewer.user, paid, cancelled)
        return _credits_page(request, ctx, session, viewer, notice=notice, redeemed=redeemed)


@router.get("/billing")
def provider_return(request: Request, order: str = "", cancelled: str = "") -> Response:
    """Where a hosted checkout (Stripe) sends the buyer back."""
    if order:
        return redirect(f"/credits?paid={quote(order, safe='')}")
    if cancelled:
        return redirect(f"/credits?cancelled={quote(cancelled, safe='')}")
    return redirect("/credits")


@router.post("/credits/redeem", response_class=HTMLResponse)
def redeem(
    request: Request,
    code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, "/credits")
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            if not code.strip():
                raise DomainError(t("Enter a promo code."), code="promo_code_missing")
            free.count_redemption_attempt(session, viewer.user.id, now=ctx.now())
            with session.begin_nested():
                lot = free.redeem_promo(
                    session, viewer.user.id, code, email=viewer.user.email, now=ctx.now()
                )
        except DomainError as exc:
            return _credits_page(
                request,
                ctx,
                session,
                viewer,
                status_code=exc.status_code,
                promo_error=i18n.error_text(exc),
                promo_code=code,
            )
        # A redirect, so reloading the page does not send the code again.
        return redirect(f"/credits?redeemed={lot.id}#promo-title")


# --- buying a pack ---------------------------------------------------------------------------


def _start(
    ctx: Context,
    session: Session,
    provider: PaymentProvider,
    user: User,
    pack: str,
    key: str,
) -> Order:
    def start() -> Order:
        return billing.start_purchase(
            session,
            provider,
            user,
            pack,
            base_url=ctx.settings.base_url,
            now=ctx.now(),
            idempotency_key=key or None,
        )

    try:
        with session.begin_nested():
            return start()
    except IntegrityError:
        # A concurrent submit of the same form won the insert: answer with its order.
        return start()


@router.post("/billing/checkout", response_class=HTMLResponse)
def checkout(
    request: Request,
    pack: Annotated[str, Form(max_length=40)] = "",
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, "/credits")
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            order = _start(ctx, session, provider_for(ctx), viewer.user, pack, idempotency_key)
        except DomainError as exc:
            return _credits_page(
                request,
                ctx,
                session,
                viewer,
                status_code=exc.status_code,
                buy_error=i18n.error_text(exc),
            )
        url = order.checkout_url or f"/billing/orders/{order.id}"
        if order.status != "pending":
            url = f"/billing/orders/{order.id}"
        if url.startswith("/") and not url.startswith("//"):
            return redirect(url)
        # A hosted checkout on another site: a link, since the page's CSP keeps form
        # submissions (and their redirects) on this site.
        names = _pack_names(session, [order])
        return render(
            request,
            "billing_checkout.html",
            viewer=viewer,
            balance=ledger.balance(session, viewer.user.id, ctx.now()),
            order=order,
            pack_name=names.get(order.pack_id, ""),
            price=_money(order.amount_cents, order.currency),
            external_url=url,
        )


@router.get("/billing/orders/{order_id}", response_class=HTMLResponse)
def receipt_page(order_id: str, request: Request) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        try:
            order = billing.order_for_user(session, viewer.user, order_id)
        except DomainError as exc:
            return _error_page(request, exc, viewer)
        (row,) = _order_rows(session, [order])
        return render(
            request,
            "billing_receipt.html",
            viewer=viewer,
            balance=ledger.balance(session, viewer.user.id, ctx.now()),
            order=order,
            row=row,
        )


# --- the sandbox provider's checkout ---------------------------------------------------------


def _no_sandbox() -> NotFound:
    return NotFound(t("There is no such checkout."), code="unknown_order")


def _sandbox_order(ctx: Context, session: Session, viewer: Viewer, order_id: str) -> Order:
    """The viewer's own sandbox order, only while the sandbox is the configured provider."""
    if ctx.settings.payment_provider != "sandbox":
        raise _no_sandbox()
    order = billing.order_for_user(session, viewer.user, order_id)
    if order.provider != "sandbox":
        raise _no_sandbox()
    return order


@router.get("/billing/sandbox/{order_id}", response_class=HTMLResponse)
def sandbox_checkout(order_id: str, request: Request) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _viewer(ctx, session, request)
        if viewer is None:
            return _to_login(request)
        try:
            order = _sandbox_order(ctx, session, viewer, order_id)
        except DomainError as exc:
            return _error_page(request, exc, viewer)
        names = _pack_names(session, [order])
        return render(
            request,
            "billing_checkout.html",
            viewer=viewer,
            balance=ledger.balance(session, viewer.user.id, ctx.now()),
            order=order,
            pack_name=names.get(order.pack_id, ""),
            price=_money(order.amount_cents, order.currency),
            status_label=t(ORDER_STATUSES.get(order.status, order.status)),
        )


@router.post("/billing/sandbox/{order_id}/pay", response_class=HTMLResponse)
def sandbox_pay(
    order_id: str, request: Request, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, f"/billing/sandbox/{order_id}")
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            order = _sandbox_order(ctx, session, viewer, order_id)
            with session.begin_nested():
                billing.sandbox_pay(
                    session,
                    viewer.user,
                    order.id,
                    now=ctx.now(),
                    credit_days=ctx.settings.paid_credit_days,
                )
        except DomainError as exc:
            return _error_page(request, exc, viewer)
    return redirect(f"/credits?paid={order.id}")


@router.post("/billing/sandbox/{order_id}/cancel", response_class=HTMLResponse)
def sandbox_cancel(
    order_id: str, request: Request, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    ctx = _ctx(request)
    with ctx.db.transaction() as session:
        viewer = _form_viewer(ctx, session, request, csrf_token, f"/billing/sandbox/{order_id}")
        if not isinstance(viewer, Viewer):
            return viewer
        try:
            order = _sandbox_order(ctx, session, viewer, order_id)
            billing.cancel_order(session, viewer.user, order.id)
        except DomainError as exc:
            return _error_page(request, exc, viewer)
        status = order.status
    if status == "cancelled":
        return redirect(f"/credits?cancelled={order.id}")
    return redirect(f"/billing/orders/{order.id}")
