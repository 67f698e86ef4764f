"""users.first_signed_in_at: whether an account has signed in before, kept apart from devices

Revision ID: 0014_known_devices_age
Revises: 0013_admins_named_by_id

Known devices (browser and IP) are now forgotten after REMOVEANY_KNOWN_DEVICE_DAYS unseen.
Whether a sign-in from a new device is announced depended on the account having any known
device, so forgetting them all would have let the next sign-in, anyone's, pass unannounced.
It now depends on this column: set at the first sign-in (here, from the devices known).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import removeany.infra.db

revision: str = "0014_known_devices_age"
down_revision: str | None = "0013_admins_named_by_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "first_signed_in_at", removeany.infra.db.UTCDateTime(timezone=True), nullable=True
            )
        )
    op.execute(
        "UPDATE users SET first_signed_in_at = (SELECT MIN(known_devices.first_seen_at) "
        "FROM known_devices WHERE known_devices.user_id = users.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("first_signed_in_at")
