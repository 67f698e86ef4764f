"""service_status, announcements and legal_versions name the admin who acted by id

Revision ID: 0013_admins_named_by_id
Revises: 0012_audit_names_by_id

`service_status.updated_by`, `announcements.created_by` and `legal_versions.published_by` kept
the acting admin's email as text, so an erased admin's address stayed. Each table now has the
admin's account id beside the text, which keeps only a label that names no one (`cli:<os
user>`, "built in"); the address is read from the account (`deleted-<id>@invalid` once
erased). This fills the ids from the addresses already stored and empties those addresses,
including ones that no longer match an account (an admin erased since).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_admins_named_by_id"
down_revision: str | None = "0012_audit_names_by_id"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, text column, new id column)
ACTORS = (
    ("service_status", "updated_by", "updated_by_id"),
    ("announcements", "created_by", "created_by_id"),
    ("legal_versions", "published_by", "published_by_id"),
)


def upgrade() -> None:
    for table, text, id_column in ACTORS:
        op.add_column(table, sa.Column(id_column, sa.Integer(), nullable=True))
        # An address is what has an @ in it: an operator's label is `cli:<os user>`.
        is_address = f"{text} LIKE '%@%' AND {text} NOT LIKE 'cli:%'"
        op.execute(
            f"UPDATE {table} SET {id_column} = "
            f"(SELECT users.id FROM users WHERE users.email = {table}.{text}) "
            f"WHERE {is_address}"
        )
        op.execute(f"UPDATE {table} SET {text} = '' WHERE {is_address}")


def downgrade() -> None:
    """The addresses are not put back: they are read from the accounts."""
    for table, _text, id_column in ACTORS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column(id_column)
