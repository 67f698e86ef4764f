"""Tables owned by billing: credit packs for sale, orders, and payment-provider events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from removeany.infra.db import Base, UTCDateTime, utcnow


class CreditPack(Base):
    __tablename__ = "credit_packs"
    __table_args__ = (
        CheckConstraint("credits > 0", name="credits_positive"),
        CheckConstraint("price_cents > 0", name="price_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    credits: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Order(Base):
    """A purchase of one pack. Credits are granted exactly once, when the provider says paid."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_idempotency"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("credit_packs.id"))
    credits: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(255), default=None, index=True)
    # Stripe's payment intent, from the completed checkout session: refunds and disputes name it.
    payment_intent: Mapped[str | None] = mapped_column(
        String(255), default=None, index=True, unique=True
    )
    checkout_url: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    lot_id: Mapped[int | None] = mapped_column(
        ForeignKey("credit_lots.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # What the provider refunded so far (Stripe's charge.amount_refunded, cumulative).
    refunded_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Why an order is "disputed" (under review): amount_mismatch, account_deleted, chargeback.
    review_reason: Mapped[str | None] = mapped_column(String(40), default=None)


class PaymentEvent(Base):
    """Every provider event we accepted, by its id: a replayed event is recognised and ignored."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_payment_events_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    order_id: Mapped[str | None] = mapped_column(String(32), default=None)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
