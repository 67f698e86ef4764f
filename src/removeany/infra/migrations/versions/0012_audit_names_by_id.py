"""admin_audit_log names accounts by id only

Revision ID: 0012_audit_names_by_id
Revises: 0011_credential_binding

Entries kept the email of the account acted on (and of the admin who acted) as text, so an
erased account's address stayed in the append-only log for ever. The log now names accounts by
id, and reading it shows their address as it is now; this empties the copies already there.
The append-only triggers are lifted for that one UPDATE and put back.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012_audit_names_by_id"
down_revision: str | None = "0011_credential_binding"
branch_labels: str | Sequence[str] | None = None
# None: 0004 (the audit log and its triggers) is already an ancestor through 0011. Naming it
# here as well made a downgrade of this revision leave 0004 in alembic_version beside 0011,
# after which no upgrade ran ("0011_credential_binding overlaps with ... 0004").
depends_on: str | Sequence[str] | None = None

SCRUB = (
    "UPDATE admin_audit_log SET "
    "target = CASE WHEN target_user_id IS NULL THEN target ELSE '' END, "
    "actor = CASE WHEN actor_id IS NULL THEN actor ELSE '' END "
    "WHERE target_user_id IS NOT NULL OR actor_id IS NOT NULL"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE admin_audit_log DISABLE TRIGGER admin_audit_log_append_only")
        op.execute(SCRUB)
        op.execute("ALTER TABLE admin_audit_log ENABLE TRIGGER admin_audit_log_append_only")
        return
    op.execute("DROP TRIGGER admin_audit_log_no_update")
    op.execute(SCRUB)
    op.execute(
        "CREATE TRIGGER admin_audit_log_no_update BEFORE UPDATE ON admin_audit_log "
        "BEGIN SELECT RAISE(ABORT, 'admin_audit_log is append-only'); END"
    )


def downgrade() -> None:
    """The emails are not restored: the log reads them from the accounts."""
