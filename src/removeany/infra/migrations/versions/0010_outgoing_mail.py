"""outgoing_mail: emails written in the transaction that causes them, delivered after commit

Revision ID: 0010_outgoing_mail
Revises: 0009_order_refunds

Emails were handed to an in-memory queue (SMTP) or written to the outbox folder while their
transaction was still open: one that rolled back still sent its email, and an email waiting
in memory was lost with the process. Now each is a row of this table until a sender delivers
it (removeany.mail).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from removeany.infra.db import UTCDateTime

revision: str = "0010_outgoing_mail"
down_revision: str | None = "0009_order_refunds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DT = UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outgoing_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("created_at", _DT, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("due_at", _DT, nullable=False),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", _DT, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_outgoing_mail_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_outgoing_mail_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_mail")),
    )
    op.create_index(op.f("ix_outgoing_mail_user_id"), "outgoing_mail", ["user_id"])
    op.create_index("ix_outgoing_mail_status_due_at", "outgoing_mail", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_outgoing_mail_status_due_at", table_name="outgoing_mail")
    op.drop_index(op.f("ix_outgoing_mail_user_id"), table_name="outgoing_mail")
    op.drop_table("outgoing_mail")
