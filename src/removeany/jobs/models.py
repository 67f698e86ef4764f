"""Table owned by jobs: one row per unit of image work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from removeany.infra.db import Base, UTCDateTime, utcnow


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_idempotency"),
        Index("ix_jobs_status_user_id", "status", "user_id"),
        # One user's history, newest first, page after page (infra.paging).
        Index("ix_jobs_user_created", "user_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cost: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    price_id: Mapped[int | None] = mapped_column(
        ForeignKey("prices.id", ondelete="SET NULL"), default=None
    )
    input_key: Mapped[str] = mapped_column(String(255))
    input_name: Mapped[str] = mapped_column(String(255), default="")
    input_width: Mapped[int] = mapped_column(Integer)
    input_height: Mapped[int] = mapped_column(Integer)
    result_key: Mapped[str | None] = mapped_column(String(255), default=None)
    result_media_type: Mapped[str | None] = mapped_column(String(50), default=None)
    result_width: Mapped[int | None] = mapped_column(Integer, default=None)
    result_height: Mapped[int | None] = mapped_column(Integer, default=None)
    detected_type: Mapped[str | None] = mapped_column(String(30), default=None)
    foreground: Mapped[dict[str, int] | None] = mapped_column(JSON, default=None)
    error_code: Mapped[str | None] = mapped_column(String(50), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Batches (migration 0002): the batch an item belongs to and its path inside the upload.
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), default=None, index=True
    )
    relative_path: Mapped[str | None] = mapped_column(String(1024), default=None)
    # Leases: each claim counts an attempt; a running job whose heartbeat is older than the
    # lease belongs to a lost worker and goes back to the queue.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
