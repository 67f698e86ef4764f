"""Every billing query lives here."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from removeany.billing.models import CreditPack, Order, PaymentEvent


def active_packs(session: Session) -> Sequence[CreditPack]:
    stmt = select(CreditPack).where(CreditPack.active.is_(True)).order_by(CreditPack.credits)
    return session.scalars(stmt).all()


def pack_by_slug(session: Session, slug: str) -> CreditPack | None:
    return session.scalar(select(CreditPack).where(CreditPack.slug == slug))


def packs_by_id(session: Session, ids: Collection[int]) -> dict[int, CreditPack]:
    """Packs by id, retired ones included (an old order still names its pack)."""
    if not ids:
        return {}
    stmt = select(CreditPack).where(CreditPack.id.in_(set(ids)))
    return {pack.id: pack for pack in session.scalars(stmt)}


def order(session: Session, order_id: str, *, for_update: bool = False) -> Order | None:
    return session.get(Order, order_id, with_for_update=for_update)


def stripe_order_by_payment_intent(session: Session, payment_intent: str) -> Order | None:
    stmt = select(Order).where(Order.provider == "stripe", Order.payment_intent == payment_intent)
    return session.scalar(stmt)


def orders_under_review(session: Session, limit: int = 100) -> Sequence[Order]:
    """Orders left "disputed" for an operator, oldest first."""
    stmt = select(Order).where(Order.status == "disputed").order_by(Order.created_at).limit(limit)
    return session.scalars(stmt).all()


def order_by_key(session: Session, user_id: int, key: str) -> Order | None:
    stmt = select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)
    return session.scalar(stmt)


def orders_of(session: Session, user_id: int) -> Sequence[Order]:
    stmt = select(Order).where(Order.user_id == user_id).order_by(Order.created_at.desc())
    return session.scalars(stmt).all()


def event(session: Session, provider: str, event_id: str) -> PaymentEvent | None:
    stmt = select(PaymentEvent).where(
        PaymentEvent.provider == provider, PaymentEvent.event_id == event_id
    )
    return session.scalar(stmt)


def blank_event_payloads(session: Session, user_id: int) -> None:
    """Empty the stored provider payloads of the user's orders (they carry the buyer's email,
    name and address); the event ids, types and orders stay."""
    orders_of_user = select(Order.id).where(Order.user_id == user_id)
    session.execute(
        update(PaymentEvent)
        .where(PaymentEvent.order_id.in_(orders_of_user))
        .values(payload="")
        .execution_options(synchronize_session=False)
    )
