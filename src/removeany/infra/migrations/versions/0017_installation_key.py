"""installation_key: an HMAC of the secret key the installation's data is made under

Revision ID: 0017_installation_key
Revises: 0001

Each process checks its secret key against it at start (`infra.installation`): a worker or
a restored data folder with another key stops with a sentence instead of sealing, signing
and encrypting what the other processes cannot open. Empty after the upgrade: the first
process to start records its key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import removeany.infra.db

revision: str = "0017_installation_key"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "installation_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_check", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", removeany.infra.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_installation_key_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation_key")),
    )


def downgrade() -> None:
    op.drop_table("installation_key")
