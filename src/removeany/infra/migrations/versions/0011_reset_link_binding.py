"""password reset links are bound to the account's credentials when they are issued

Revision ID: 0011_reset_link_binding
Revises: 0010_outgoing_mail, 0002, 0004, 0005_more_services, 0006_user_locale

A reset link now works only while the account's password, email address and lock are what
they were when it was mailed (accounts.security.credential_fingerprint), so a password change,
a reset, an email change or a report of unauthorized use kills every link sent before it.
Links outstanding at this upgrade have no fingerprint and stop working: they last an hour at
most, and anyone holding one can ask for a new one.

It also joins the history's branches (every head before it), so there is one head again and
password_reset_tokens (0004) exists before it is altered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_reset_link_binding"
down_revision: str | Sequence[str] | None = (
    "0010_outgoing_mail",
    "0002",
    "0004",
    "0005_more_services",
    "0006_user_locale",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("password_reset_tokens") as batch:
        batch.add_column(
            sa.Column("credential_fingerprint", sa.String(32), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("password_reset_tokens") as batch:
        batch.drop_column("credential_fingerprint")
