"""Buying credit packs: orders, provider checkouts, and granting credits exactly once.
Flushes, never commits."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from removeany import i18n
from removeany.accounts.models import User
from removeany.billing import repository as repo
from removeany.billing.models import CreditPack, Order, PaymentEvent
from removeany.billing.providers import CheckoutRequest, PaymentProvider
from removeany.credits import repository as credits_repo
from removeany.credits import service as ledger
from removeany.errors import Conflict, DomainError, NotFound
from removeany.i18n import t, tn

log = logging.getLogger(__name__)


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency.upper()}"


# The packs the first migration creates keep these English names in the database and the
# API; people read them in their language. A pack an operator names otherwise shows as named.
BUILT_IN_PACK_NAMES = {"Starter": "Starter", "Standard": "Standard", "Pro": "Pro"}


def shown_pack_name(name: str) -> str:
    """A pack's name as people read it (pages, receipts, the payment provider's page)."""
    return t(BUILT_IN_PACK_NAMES[name]) if name in BUILT_IN_PACK_NAMES else name


def packs(session: Session) -> Sequence[CreditPack]:
    return repo.active_packs(session)


def start_purchase(
    session: Session,
    provider: PaymentProvider,
    user: User,
    pack_slug: str,
    *,
    base_url: str,
    now: datetime,
    idempotency_key: str | None = None,
) -> Order:
    """Create a pending order and its checkout. The same idempotency key with the same pack
    returns the same order; with another pack it is refused (409)."""
    pack = repo.pack_by_slug(session, pack_slug)
    if pack is None or not pack.active:
        raise NotFound(f"There is no credit pack {pack_slug!r} for sale.", code="unknown_pack")
    if idempotency_key:
        existing = repo.order_by_key(session, user.id, idempotency_key)
        if existing is not None:
            if existing.pack_id != pack.id:
                raise Conflict(
                    "This Idempotency-Key was already used for a different purchase. "
                    "Use a new key for a new purchase.",
                    code="idempotency_key_reused",
                )
            return existing
    order = Order(
        id=uuid.uuid4().hex,
        user_id=user.id,
        pack_id=pack.id,
        credits=pack.credits,
        amount_cents=pack.price_cents,
        currency=pack.currency,
        provider=provider.name,
        status="pending",
        idempotency_key=idempotency_key or None,
        created_at=now,
    )
    session.add(order)
    session.flush()
    base = base_url.rstrip("/")
    checkout = provider.start_checkout(
        CheckoutRequest(
            order_id=order.id,
            product_name=tn(
                "{name} ({n} credit)",
                "{name} ({n} credits)",
                pack.credits,
                name=shown_pack_name(pack.name),
            ),
            locale=i18n.current(),
            amount_cents=pack.price_cents,
            currency=pack.currency,
            customer_email=user.email,
            success_url=f"{base}/billing?order={order.id}",
            cancel_url=f"{base}/billing?cancelled={order.id}",
        )
    )
    order.checkout_url = checkout.url
    order.provider_ref = checkout.provider_ref
    session.flush()
    return order


def complete_order(session: Session, order: Order, *, now: datetime, credit_days: int) -> bool:
    """Grant the order's credits as a purchase lot; True only the first time."""
    credits_repo.lock_user(session, order.user_id)
    session.refresh(order)
    if order.status == "paid":
        return False
    lot = ledger.grant(
        session,
        order.user_id,
        order.credits,
        source="purchase",
        now=now,
        expires_at=now + timedelta(days=credit_days),
        reference=f"order:{order.id}",
        idempotency_key=f"order:{order.id}",
    )
    order.status = "paid"
    order.paid_at = now
    order.lot_id = lot.id if lot is not None else None
    session.flush()
    return True


def orders(session: Session, user: User) -> Sequence[Order]:
    return repo.orders_of(session, user.id)


def pack_names(session: Session, placed: Sequence[Order]) -> dict[int, str]:
    """The name of each order's pack, by pack id."""
    packs = repo.packs_by_id(session, {o.pack_id for o in placed})
    return {pack_id: pack.name for pack_id, pack in packs.items()}


def order_for_user(session: Session, user: User, order_id: str) -> Order:
    order = repo.order(session, order_id)
    if order is None or order.user_id != user.id:
        raise NotFound("No such order.", code="unknown_order")
    return order


def sandbox_pay(
    session: Session, user: User, order_id: str, *, now: datetime, credit_days: int
) -> Order:
    order = order_for_user(session, user, order_id)
    if order.provider != "sandbox":
        raise DomainError("This order is not a sandbox order.", code="not_sandbox")
    if order.status not in ("pending", "paid"):
        raise Conflict(f"This order is {order.status}; start a new purchase.", code="order_closed")
    complete_order(session, order, now=now, credit_days=credit_days)
    return order


def cancel_order(session: Session, user: User, order_id: str) -> Order:
    order = order_for_user(session, user, order_id)
    if order.status == "pending":
        order.status = "cancelled"
        session.flush()
    return order


CHECKOUT_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.expired",
)
CHARGE_EVENTS = ("charge.refunded", "charge.dispute.created")


def record_stripe_event(
    session: Session, event: dict[str, Any], payload: bytes, *, now: datetime, credit_days: int
) -> str:
    """Store the event once by id and act on it; a replay grants nothing. Returns what
    happened, for the log."""
    event_id = str(event.get("id", ""))
    if not event_id:
        raise DomainError("The event has no id.", code="invalid_event")
    if repo.event(session, "stripe", event_id) is not None:
        return "duplicate"
    kind = str(event.get("type", ""))
    obj: dict[str, Any] = event.get("data", {}).get("object", {}) or {}
    stored = PaymentEvent(
        provider="stripe",
        event_id=event_id,
        type=kind,
        payload=payload.decode("utf-8", "replace"),
        received_at=now,
    )
    session.add(stored)
    session.flush()
    if kind not in CHECKOUT_EVENTS + CHARGE_EVENTS:
        return "ignored"
    order = _stripe_order(session, kind, obj)
    if order is None:
        return "unknown_order"
    stored.order_id = order.id
    owner = session.get(User, order.user_id)
    erased = owner is None or owner.status == "deleted"
    if erased:
        stored.payload = ""  # it names the buyer, whose account was erased (forget_buyer)
    if kind == "charge.refunded":
        return refund_order(session, order, obj, now=now)
    if kind == "charge.dispute.created":
        return dispute_order(session, order, now=now)
    if kind == "checkout.session.expired":
        if order.status == "pending":
            order.status = "expired"
        return "expired"
    if obj.get("payment_status") != "paid":
        return "awaiting_payment"
    if order.payment_intent is None and isinstance(obj.get("payment_intent"), str):
        order.payment_intent = obj["payment_intent"]
        session.flush()  # before complete_order reloads the order
    if erased:
        # Paid after the account was erased: nobody can use the credits, so none are granted;
        # the order is left for the operator to refund.
        if order.status == "pending":
            _hold_for_review(order, "account_deleted")
        return "account_deleted"
    if order.status in ("refunded", "partly_refunded") or order.review_reason == "chargeback":
        return "order_closed"  # its money went back: a late event grants nothing
    if (
        obj.get("amount_total") != order.amount_cents
        or str(obj.get("currency", "")).lower() != order.currency.lower()
    ):
        # A paid order's credits were granted; a stray event must not relabel its receipt.
        if order.status != "paid":
            _hold_for_review(order, "amount_mismatch")
        return "amount_mismatch"
    return (
        "granted"
        if complete_order(session, order, now=now, credit_days=credit_days)
        else "already_paid"
    )


def _stripe_order(session: Session, kind: str, obj: dict[str, Any]) -> Order | None:
    """The Stripe order an event is about, only if the event names that order's own checkout
    session (checkout events) or payment intent (charge, refund and dispute events)."""
    if kind in CHARGE_EVENTS:
        intent = obj.get("payment_intent")
        if not isinstance(intent, str) or not intent:
            return None
        return repo.stripe_order_by_payment_intent(session, intent)
    order_id = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("order_id")
    order = repo.order(session, str(order_id)) if order_id else None
    if order is None or order.provider != "stripe" or order.provider_ref != obj.get("id"):
        return None
    return order


def _hold_for_review(order: Order, reason: str) -> None:
    """Leave the order "disputed" for an operator (the admin console lists it), and say so in
    the log, which is where an operator is alerted."""
    order.status = "disputed"
    order.review_reason = reason
    log.warning(
        "order %s (user %s, %s) is under review: %s",
        order.id,
        order.user_id,
        _money(order.amount_cents, order.currency),
        reason,
    )


def _credits_for(order: Order, cents: int) -> int:
    """The whole credits `cents` of the order's price paid for (a fraction stays with the
    buyer; the whole price is every credit)."""
    if cents >= order.amount_cents:
        return order.credits
    return order.credits * cents // order.amount_cents


def refund_order(session: Session, order: Order, charge: dict[str, Any], *, now: datetime) -> str:
    """Stripe refunded (part of) the order's charge: take back the unspent credits the newly
    refunded part paid for. `amount_refunded` is cumulative, so a later event for the same
    refund takes nothing again."""
    credits_repo.lock_user(session, order.user_id)
    session.refresh(order)
    refunded = charge.get("amount_refunded")
    if not isinstance(refunded, int) or refunded <= order.refunded_cents:
        return "already_refunded"
    refunded = min(refunded, order.amount_cents)
    claim = _credits_for(order, refunded) - _credits_for(order, order.refunded_cents)
    order.refunded_cents = refunded
    if order.lot_id is not None:
        ledger.take_back(
            session, order.lot_id, claim, kind="refund", reference=f"order:{order.id}", now=now
        )
    if order.review_reason != "chargeback":
        order.status = "refunded" if refunded >= order.amount_cents else "partly_refunded"
    session.flush()
    return "refunded"


def dispute_order(session: Session, order: Order, *, now: datetime) -> str:
    """The buyer's bank disputes the charge (a chargeback): the order's unspent credits are
    taken back and the order waits for an operator."""
    credits_repo.lock_user(session, order.user_id)
    session.refresh(order)
    if order.review_reason == "chargeback":
        return "already_disputed"
    if order.lot_id is not None:
        ledger.take_back(
            session,
            order.lot_id,
            order.credits,
            kind="chargeback",
            reference=f"order:{order.id}",
            now=now,
        )
    _hold_for_review(order, "chargeback")
    session.flush()
    return "disputed"


@dataclass(frozen=True)
class OrderUnderReview:
    order: Order
    email: str  # the buyer's address (an erased account's placeholder)
    amount: str


def orders_under_review(session: Session) -> list[OrderUnderReview]:
    """Orders waiting for an operator (refund, or answer a chargeback), for the admin console."""
    placed = repo.orders_under_review(session)
    users = {u.id: u for u in (session.get(User, uid) for uid in {o.user_id for o in placed}) if u}
    return [
        OrderUnderReview(
            order=o,
            email=users[o.user_id].email if o.user_id in users else "",
            amount=_money(o.amount_cents, o.currency),
        )
        for o in placed
    ]


def forget_buyer(session: Session, user_id: int) -> None:
    """Account erasure: orders stay for accounting (amount, credits, dates), but the
    provider's copy of the checkout, which names the buyer, goes."""
    repo.blank_event_payloads(session, user_id)
    session.flush()


def receipt(order: Order) -> dict[str, Any]:
    return {
        "order": order.id,
        "credits": order.credits,
        "amount": _money(order.amount_cents, order.currency),
        "refunded": _money(order.refunded_cents, order.currency) if order.refunded_cents else None,
        "status": order.status,
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
    }
