"""every credit lot expires: lots granted without an expiry get one, and the column is required

Revision ID: 0008_every_lot_expires
Revises: 0007_promo_mailbox

The terms say credits expire, but admin grants without days (and `users create --credits`)
made lots that never did. Such a lot, whatever is left of it, now expires the operator's
default for admin grants (REMOVEANY_ADMIN_CREDIT_DAYS, 365 days unless set) after this
migration runs: nobody loses a credit today, and none lasts forever.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from removeany.infra.db import UTCDateTime
from removeany.infra.settings import Settings

revision: str = "0008_every_lot_expires"
down_revision: str | None = "0007_promo_mailbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    expires_at = datetime.now(UTC) + timedelta(days=Settings().admin_credit_days)
    lots = sa.table("credit_lots", sa.column("expires_at", UTCDateTime()))
    op.execute(lots.update().where(lots.c.expires_at.is_(None)).values(expires_at=expires_at))
    with op.batch_alter_table("credit_lots") as batch:
        batch.alter_column("expires_at", existing_type=UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("credit_lots") as batch:
        batch.alter_column("expires_at", existing_type=UTCDateTime(), nullable=True)
