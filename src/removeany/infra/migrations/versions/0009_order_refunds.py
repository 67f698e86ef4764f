"""orders remember their Stripe payment intent, what was refunded, and why one is under review

Revision ID: 0009_order_refunds
Revises: 0008_every_lot_expires

Refund and dispute events name the payment intent, not the checkout session: it is stored when
the session completes (orders paid before this migration have none, so Stripe's refunds of
those are not matched; refund them by hand as before).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_order_refunds"
down_revision: str | None = "0008_every_lot_expires"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("payment_intent", sa.String(255), nullable=True))
        batch.add_column(
            sa.Column("refunded_cents", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("review_reason", sa.String(40), nullable=True))
        batch.create_index("ix_orders_payment_intent", ["payment_intent"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_payment_intent")
        batch.drop_column("review_reason")
        batch.drop_column("refunded_cents")
        batch.drop_column("payment_intent")
