"""Tables owned by moderation: the append-only admin audit log, per-service status set by
operators, and site announcements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from removeany.infra.db import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    """One admin action. Rows are only ever inserted (database triggers refuse UPDATE and
    DELETE); the target is kept by id *and* readable name, with no foreign key, so the entry
    still says who was affected after the account is deleted and anonymised."""

    __tablename__ = "admin_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(50))
    target_user_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    target: Mapped[str] = mapped_column(String(320), default="")
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ServiceStatus(Base):
    """A service without a row is active. `disabled`: switched off until further notice;
    `suspended`: temporarily unavailable. Either way new jobs are refused with `message`."""

    __tablename__ = "service_status"

    service: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    message: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Who set it, as the audit log names actors: an admin by account id (no copy of the
    # address, which must go with an erasure), an operator at the command line by label.
    updated_by_id: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_by: Mapped[str] = mapped_column(String(320), default="")


class Announcement(Base):
    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(20), default="info")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(Integer, default=None)  # as updated_by_id
    created_by: Mapped[str] = mapped_column(String(320), default="")
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
