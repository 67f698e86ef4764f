"""sessions and password reset links are bound to the credentials they were issued for

Revision ID: 0011_credential_binding
Revises: 0004

A browser session now works only while the account's password is the one it was started
with (accounts.service.password_fingerprint: a hash of the password hash), and a reset link
only while the account's password, email address and lock are what they were when it was
mailed (accounts.security.credential_fingerprint). Setting a password, by any path, ends the
sessions started before; a password change, a reset, an email change or a report of
unauthorized use kills every reset link sent before.

Sessions open at this upgrade are bound to their account's current password here, so nobody
is signed out. Reset links outstanding at this upgrade stop working: they last an hour at
most, and anyone holding one can ask for a new one.

It follows 0004 (trust), which made password_reset_tokens; like the other domains' branches
it stays a head of its own (`infra.db.upgrade` migrates to "heads").
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_credential_binding"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("password_reset_tokens") as batch:
        batch.add_column(
            sa.Column("credential_fingerprint", sa.String(32), nullable=False, server_default="")
        )
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(
            sa.Column("password_fingerprint", sa.String(32), nullable=False, server_default="")
        )
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("password_hash", sa.String))
    sessions = sa.table(
        "web_sessions",
        sa.column("user_id", sa.Integer),
        sa.column("revoked_at", sa.DateTime),
        sa.column("password_fingerprint", sa.String),
    )
    holders = sa.select(sessions.c.user_id).where(sessions.c.revoked_at.is_(None))
    for user_id, password_hash in conn.execute(
        sa.select(users.c.id, users.c.password_hash).where(users.c.id.in_(holders))
    ):
        # As accounts.service.password_fingerprint computes it.
        fingerprint = hashlib.sha256(password_hash.encode()).hexdigest()[:32]
        conn.execute(
            sessions.update()
            .where(sessions.c.user_id == user_id)
            .values(password_fingerprint=fingerprint)
        )


def downgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("password_fingerprint")
    with op.batch_alter_table("password_reset_tokens") as batch:
        batch.drop_column("credential_fingerprint")
