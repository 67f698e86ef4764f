"""trust: account security, moderation, service control, terms, privacy

Revision ID: 0004
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from removeany.infra.db import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DT = UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("status", sa.String(20), nullable=False, server_default="active")
        )
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("locked_at", _DT, nullable=True))
        batch.add_column(sa.Column("deleted_at", _DT, nullable=True))
        batch.add_column(sa.Column("password_changed_at", _DT, nullable=True))
        batch.add_column(sa.Column("totp_secret", sa.String(255), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", _DT, nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))

    op.create_table(
        "rate_counters",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("window_start", _DT, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_counters")),
    )
    op.create_table(
        "password_reset_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _DT, nullable=False),
        sa.Column("expires_at", _DT, nullable=False),
        sa.Column("used_at", _DT, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_reset_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_reset_tokens_token_hash")),
    )
    op.create_index(op.f("ix_password_reset_tokens_user_id"), "password_reset_tokens", ["user_id"])
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(255), nullable=False),
        sa.Column("created_at", _DT, nullable=False),
        sa.Column("used_at", _DT, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_user_id"), "recovery_codes", ["user_id"])
    op.create_table(
        "known_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(400), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("first_seen_at", _DT, nullable=False),
        sa.Column("last_seen_at", _DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_known_devices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_devices")),
        sa.UniqueConstraint("user_id", "fingerprint", name="uq_known_devices_user_fp"),
    )
    op.create_index(op.f("ix_known_devices_user_id"), "known_devices", ["user_id"])

    op.create_table(
        "legal_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("terms_en", sa.Text(), nullable=False),
        sa.Column("terms_zh", sa.Text(), nullable=False),
        sa.Column("privacy_en", sa.Text(), nullable=False),
        sa.Column("privacy_zh", sa.Text(), nullable=False),
        sa.Column("published_at", _DT, nullable=False),
        sa.Column("published_by", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_legal_versions")),
    )
    op.create_table(
        "terms_acceptances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("accepted_at", _DT, nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(400), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_terms_acceptances_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terms_acceptances")),
    )
    op.create_index(op.f("ix_terms_acceptances_user_id"), "terms_acceptances", ["user_id"])

    op.create_table(
        "admin_audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", _DT, nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target_user_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit_log")),
    )
    op.create_index(op.f("ix_admin_audit_log_created_at"), "admin_audit_log", ["created_at"])
    op.create_index(
        op.f("ix_admin_audit_log_target_user_id"), "admin_audit_log", ["target_user_id"]
    )
    op.create_table(
        "service_status",
        sa.Column("service", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("updated_at", _DT, nullable=False),
        sa.Column("updated_by", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("service", name=op.f("pk_service_status")),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("starts_at", _DT, nullable=False),
        sa.Column("ends_at", _DT, nullable=True),
        sa.Column("created_at", _DT, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("withdrawn_at", _DT, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_table(
        "job_file_deletions",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("deleted_at", _DT, nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_job_file_deletions_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_file_deletions")),
    )
    _append_only("admin_audit_log")


def _append_only(table: str) -> None:
    """The database itself refuses UPDATE and DELETE on an audit table."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION removeany_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION removeany_append_only()"
        )
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS admin_audit_log_append_only ON admin_audit_log")
        op.execute("DROP FUNCTION IF EXISTS removeany_append_only()")
    for table in (
        "job_file_deletions",
        "announcements",
        "service_status",
        "admin_audit_log",
        "terms_acceptances",
        "legal_versions",
        "known_devices",
        "recovery_codes",
        "password_reset_tokens",
        "rate_counters",
    ):
        op.drop_table(table)
    with op.batch_alter_table("users") as batch:
        for column in (
            "totp_last_step",
            "totp_enabled_at",
            "totp_secret",
            "password_changed_at",
            "deleted_at",
            "locked_at",
            "status_reason",
            "status",
        ):
            batch.drop_column(column)
