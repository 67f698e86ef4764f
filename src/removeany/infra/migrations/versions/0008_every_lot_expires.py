"""every credit lot expires: lots granted without an expiry get one, and the column is required

Revision ID: 0008_every_lot_expires
Revises: 0007_promo_mailbox

The terms say credits expire, but admin grants without days (and `users create --credits`)
made lots that never did. Such a lot, whatever is left of it, now expires the operator's
default for admin grants (REMOVEANY_ADMIN_CREDIT_DAYS, 365 days unless set) after this
migration runs: nobody loses a credit today, and none lasts forever.
"""

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from removeany.infra.db import UTCDateTime

revision: str = "0008_every_lot_expires"
down_revision: str | None = "0007_promo_mailbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def admin_credit_days() -> int:
    """REMOVEANY_ADMIN_CREDIT_DAYS as the settings read it when this was written: a whole
    number of days, at least 1, and 365 unless set (tests/infra/test_migrations.py checks
    that the service still reads a value set the same way)."""
    days = int(os.environ.get("REMOVEANY_ADMIN_CREDIT_DAYS", "365"))
    if days < 1:
        raise ValueError(f"REMOVEANY_ADMIN_CREDIT_DAYS must be at least 1, not {days}")
    return days


def upgrade() -> None:
    expires_at = datetime.now(UTC) + timedelta(days=admin_credit_days())
    lots = sa.table("credit_lots", sa.column("expires_at", UTCDateTime()))
    op.execute(lots.update().where(lots.c.expires_at.is_(None)).values(expires_at=expires_at))
    with op.batch_alter_table("credit_lots") as batch:
        batch.alter_column("expires_at", existing_type=UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("credit_lots") as batch:
        batch.alter_column("expires_at", existing_type=UTCDateTime(), nullable=True)
