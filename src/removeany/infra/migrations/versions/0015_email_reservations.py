"""email_reservations: an address an account moved away from, kept for the undo

Revision ID: 0015_email_reservations
Revises: 0014_known_devices_age

After a confirmed email change, the old address's "this wasn't me" link moves the account
back for 14 days. Someone who had changed the address could block that by signing up with
the old one; it is now reserved for the account that left it while the link works.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import removeany.infra.db

revision: str = "0015_email_reservations"
down_revision: str | None = "0014_known_devices_age"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_reservations",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", removeany.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_email_reservations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_email_reservations")),
    )
    op.create_index(op.f("ix_email_reservations_user_id"), "email_reservations", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_email_reservations_user_id"), table_name="email_reservations")
    op.drop_table("email_reservations")
