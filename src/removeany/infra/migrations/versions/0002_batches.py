"""batches: many images as one unit; jobs learn their batch, path, lease and attempts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import removeany.infra.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("service", sa.String(length=40), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("total_items", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("total_pixels", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("created_at", removeany.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", removeany.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_batches_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_batches_created_at"), ["created_at"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("relative_path", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("heartbeat_at", removeany.infra.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_jobs_batch_id_batches"),
            "batches",
            ["batch_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(batch_op.f("ix_jobs_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index("ix_jobs_status_user_id", ["status", "user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status_user_id")
        batch_op.drop_index(batch_op.f("ix_jobs_batch_id"))
        batch_op.drop_constraint(batch_op.f("fk_jobs_batch_id_batches"), type_="foreignkey")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("attempts")
        batch_op.drop_column("relative_path")
        batch_op.drop_column("batch_id")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_created_at"))
        batch_op.drop_index(batch_op.f("ix_batches_user_id"))
    op.drop_table("batches")
