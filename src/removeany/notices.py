"""What the site shows on every page: announcements, suspended services, and a reminder to
accept new terms. Registered as the `trust_notices` template global by `trust.install`."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from removeany.context import Context
from removeany.i18n import t
from removeany.legal import service as legal
from removeany.moderation import service as moderation
from removeany.moderation.service import SERVICE_NAMES


@dataclass(frozen=True)
class Notice:
    kind: str
    level: str
    message: str
    link: str = ""
    link_text: str = ""


_readers: weakref.WeakKeyDictionary[Any, Engine] = weakref.WeakKeyDictionary()


def _reader(ctx: Context) -> Engine:
    """Pages may be rendered while their route still holds a transaction. On SQLite that
    transaction holds the write lock (BEGIN IMMEDIATE), so these reads use a plain engine
    without it (WAL readers never wait for the writer). PostgreSQL reads never wait."""
    if ctx.db.engine.dialect.name != "sqlite":
        return ctx.db.engine
    engine = _readers.get(ctx.db)
    if engine is None:
        engine = create_engine(
            ctx.db.url, poolclass=NullPool, connect_args={"check_same_thread": False}
        )
        _readers[ctx.db] = engine
    return engine


def notices(request: Request, viewer: Any = None) -> list[Notice]:
    ctx: Context = request.app.state.ctx
    found: list[Notice] = []
    with Session(_reader(ctx)) as session:
        for row in moderation.current_announcements(session, ctx.now()):
            found.append(Notice("announcement", row.level, row.message))
        for status in moderation.service_statuses(session):
            if status.status == "active":
                continue
            name = t(SERVICE_NAMES.get(status.service, status.service))
            if status.status == "suspended":
                text = t(
                    "{name} is temporarily suspended: {message}", name=name, message=status.message
                )
            else:
                text = t("{name} is disabled: {message}", name=name, message=status.message)
            found.append(Notice("service", "warning", text))
        if viewer is not None and not request.url.path.startswith("/legal/"):
            terms = legal.current(session)
            accepted = legal.accepted_version(session, viewer.user.id)
            if accepted != terms.version:
                message = (
                    t(
                        "We updated our Terms of Service and Privacy Policy (version "
                        "{version}). Review and accept them to keep using the services.",
                        version=terms.version,
                    )
                    if accepted is not None
                    else t(
                        "Accept the Terms of Service and Privacy Policy to start using the "
                        "services."
                    )
                )
                found.append(
                    Notice("terms", "warning", message, "/legal/accept", t("Review and accept"))
                )
    return found
