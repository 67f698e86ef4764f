"""promo redemptions remember the mailbox (hashed), so a code is redeemed once per mailbox

Revision ID: 0007_promo_mailbox
Revises: 0003

A separate head next to the other feature branches: `infra.db.upgrade` migrates to "heads".
Existing redemptions get the hashed mailbox of their account's address (an erased account's
stands for no mailbox; a mailbox's second redemption of one code, made before this check,
gets none), by credits.free's rule as it was when this was written, copied here.
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_promo_mailbox"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The rule of credits.free when this was written. The app refuses a second redemption whose
# mailbox, computed by its rule of the day, equals one written here: the two must agree
# (tests/infra/test_migrations.py checks they still do).
DOTLESS_PROVIDERS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_key(email: str) -> str:
    """The mailbox behind an address: case, plus-tags and (for Gmail) dots don't make a new one."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in DOTLESS_PROVIDERS:
        local = local.replace(".", "")
        domain = DOTLESS_PROVIDERS[domain]
    return f"{local}@{domain}"


def erased_key(key: str) -> str:
    """The mailbox key as stored: hashed, not the address."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("promo_redemptions") as batch:
        batch.add_column(sa.Column("mailbox", sa.String(80), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT r.id, r.promo_id, u.email FROM promo_redemptions r "
            "JOIN users u ON u.id = r.user_id ORDER BY r.id"
        )
    ).all()
    seen: set[tuple[int, str]] = set()
    for redemption_id, promo_id, email in rows:
        mailbox = erased_key(mailbox_key(email))
        if (promo_id, mailbox) in seen:
            continue  # a second account of the mailbox redeemed it before this check existed
        seen.add((promo_id, mailbox))
        conn.execute(
            sa.text("UPDATE promo_redemptions SET mailbox = :m WHERE id = :id"),
            {"m": mailbox, "id": redemption_id},
        )
    with op.batch_alter_table("promo_redemptions") as batch:
        batch.create_unique_constraint("uq_promo_redemptions_mailbox_once", ["promo_id", "mailbox"])


def downgrade() -> None:
    with op.batch_alter_table("promo_redemptions") as batch:
        batch.drop_constraint("uq_promo_redemptions_mailbox_once", type_="unique")
        batch.drop_column("mailbox")
