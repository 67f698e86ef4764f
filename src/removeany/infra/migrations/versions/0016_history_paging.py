"""jobs and batches: an index on (user_id, created_at, id) for the history pages

Revision ID: 0016_history_paging
Revises: 0002

The job and batch lists (API `before`/`limit`, the web's "Older" links) read one user's rows
newest first by (created_at, id), after a cursor (`infra.paging`). With only the user_id and
created_at indexes, SQLite and PostgreSQL walked the created_at index through every user's rows
to find one user's page (or sorted all of that user's rows); this index hands each page over in
order.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_history_paging"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_user_created", "jobs", ["user_id", "created_at", "id"])
    op.create_index("ix_batches_user_created", "batches", ["user_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_batches_user_created", table_name="batches")
    op.drop_index("ix_jobs_user_created", table_name="jobs")
