"""Table owned by the catalogue: prices, versioned so a job keeps the price it was accepted at."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from removeany.infra.db import Base, UTCDateTime, utcnow


class Price(Base):
    """One version of the price of a service at a size tier. Rows are never updated: a change
    adds a version, and jobs point at the row they were charged by."""

    __tablename__ = "prices"
    __table_args__ = (
        UniqueConstraint("service", "tier", "version", name="uq_prices_service_tier_version"),
        CheckConstraint("credits >= 0", name="credits_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(20))
    credits: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    note: Mapped[str] = mapped_column(String(200), default="")
