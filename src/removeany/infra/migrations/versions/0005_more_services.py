"""more services: launch prices for portrait cutout, ID photos and watermark removal

Revision ID: 0005_more_services
Revises: 0003

Data only (the `prices` table comes from 0003). The other branches (0002 batches, 0004 trust)
stay separate heads: `infra.db.upgrade` migrates to "heads", so no merge revision is needed.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import removeany.infra.db

revision: str = "0005_more_services"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Version 1 of each new service's price, per size tier (catalog.prices.DEFAULT_PRICES).
LAUNCH_PRICES: tuple[tuple[str, str, int], ...] = (
    ("portrait", "preview", 1),
    ("portrait", "full", 1),
    ("portrait", "50MP", 2),
    ("id_photo", "full", 1),
    ("remove_watermark", "preview", 1),
    ("remove_watermark", "full", 1),
    ("remove_watermark", "50MP", 2),
)
SERVICES = sorted({service for service, _, _ in LAUNCH_PRICES})

_prices = sa.table(
    "prices",
    sa.column("id", sa.Integer),
    sa.column("service", sa.String),
    sa.column("tier", sa.String),
    sa.column("credits", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("created_at", removeany.infra.db.UTCDateTime(timezone=True)),
    sa.column("note", sa.String),
)
_jobs = sa.table("jobs", sa.column("price_id", sa.Integer))


def upgrade() -> None:
    now = datetime.now(UTC)
    op.bulk_insert(
        _prices,
        [
            {
                "service": service,
                "tier": tier,
                "credits": credits,
                "version": 1,
                "created_at": now,
                "note": "launch price",
            }
            for service, tier, credits in LAUNCH_PRICES
        ],
    )


def downgrade() -> None:
    # Jobs keep their cost and lose the price, as jobs.price_id's ON DELETE SET NULL says; set
    # here, because migrations run on SQLite without foreign-key enforcement (env.py).
    ours = sa.select(_prices.c.id).where(_prices.c.service.in_(SERVICES))
    op.execute(_jobs.update().where(_jobs.c.price_id.in_(ours)).values(price_id=None))
    op.execute(_prices.delete().where(_prices.c.service.in_(SERVICES)))
