"""Every catalogue query lives here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from removeany.catalog.models import Price


def current(session: Session, service: str, tier: str) -> Price | None:
    stmt = (
        select(Price)
        .where(Price.service == service, Price.tier == tier)
        .order_by(Price.version.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def as_of(session: Session, service: str, tier: str, at: datetime) -> Price | None:
    """The version in force at `at`: the newest one created by then (the first one when all
    are newer, as the seed rows are than a clock set back)."""
    stmt = select(Price).where(Price.service == service, Price.tier == tier)
    before = session.scalar(
        stmt.where(Price.created_at <= at).order_by(Price.version.desc()).limit(1)
    )
    return before or session.scalar(stmt.order_by(Price.version).limit(1))


def all_current(session: Session) -> Sequence[Price]:
    latest = (
        select(Price.service, Price.tier, func.max(Price.version).label("version"))
        .group_by(Price.service, Price.tier)
        .subquery()
    )
    stmt = (
        select(Price)
        .join(
            latest,
            (Price.service == latest.c.service)
            & (Price.tier == latest.c.tier)
            & (Price.version == latest.c.version),
        )
        .order_by(Price.service, Price.tier)
    )
    return session.scalars(stmt).all()


def history(session: Session, service: str) -> Sequence[Price]:
    stmt = select(Price).where(Price.service == service).order_by(Price.tier, Price.version)
    return session.scalars(stmt).all()
