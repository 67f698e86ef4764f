"""Table owned by privacy: which jobs' files were erased, when and why."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from removeany.infra.db import Base, UTCDateTime, utcnow


class JobFileDeletion(Base):
    """The original and result of `job_id` are gone from storage. reason: retention | user |
    account."""

    __tablename__ = "job_file_deletions"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(String(20))
