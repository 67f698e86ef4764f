"""Table owned by batches; its items are rows of `jobs` (jobs.batch_id, jobs.relative_path)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from removeany.infra.db import Base, UTCDateTime, utcnow


class Batch(Base):
    __tablename__ = "batches"
    # One user's history, newest first, page after page (infra.paging).
    __table_args__ = (Index("ix_batches_user_created", "user_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    service: Mapped[str] = mapped_column(String(40))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total_items: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    total_pixels: Mapped[int] = mapped_column(BigInteger)
    # Files in the upload that are not images we can process: [{path, code, message}].
    rejected: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
