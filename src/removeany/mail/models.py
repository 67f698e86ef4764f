"""Table owned by mail: each email waiting to be delivered, or recently delivered or given up."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from removeany.infra.db import Base, UTCDateTime

PENDING, SENT, FAILED = "pending", "sent", "failed"


class OutgoingMail(Base):
    """One email. Written by the transaction whose change it tells about, so it exists exactly
    when that change does; a sender delivers it after the commit. status: pending (waiting, or
    claimed by a sender until `due_at`) | sent | failed (given up: `last_error` says why).
    The body (which may hold a live link) is emptied when the email is sent or given up, and
    the row is deleted after a short retention."""

    __tablename__ = "outgoing_mail"
    __table_args__ = (
        CheckConstraint(f"status IN ('{PENDING}', '{SENT}', '{FAILED}')", name="status"),
        Index("ix_outgoing_mail_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Whose account the email is about (None: nobody's); erasing the account deletes its mail.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None, index=True
    )
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    # The same Message-ID on every attempt, so a receiver can tell a repeat from a new email.
    message_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default=PENDING)
    # When the next attempt may start; while a sender holds the claim, when its claim lapses.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim: Mapped[str | None] = mapped_column(String(32), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
