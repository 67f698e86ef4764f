"""Tables owned by legal: published versions of the terms and privacy policy, and who accepted
which version, when and from where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from removeany.infra.db import Base, UTCDateTime, utcnow


class LegalVersion(Base):
    """Terms of Service and Privacy Policy, versioned together. Version 1 is built in (see
    `legal.texts`); an administrator publishes later versions, which are never edited."""

    __tablename__ = "legal_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    summary: Mapped[str] = mapped_column(Text, default="")
    terms_en: Mapped[str] = mapped_column(Text)
    terms_zh: Mapped[str] = mapped_column(Text)
    privacy_en: Mapped[str] = mapped_column(Text)
    privacy_zh: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The admin account by id (its address is read from it, so an erasure leaves none here);
    # `cli:<os user>` or "built in" as text otherwise.
    published_by_id: Mapped[int | None] = mapped_column(Integer, default=None)
    published_by: Mapped[str] = mapped_column(String(320), default="")


class TermsAcceptance(Base):
    __tablename__ = "terms_acceptances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
