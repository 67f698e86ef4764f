"""Keyset pages of a user's rows, newest first: the one query behind every "older" list (the
API's `before`/`limit` with its Link header, the web's "Older" links)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from removeany.errors import DomainError

T = TypeVar("T")

# What one page of an API list holds unless `limit` says otherwise, and the most it may hold.
PAGE_DEFAULT = 50
PAGE_MAX = 200


def newest_first(
    session: Session,
    stmt: Select[T],
    created_at: InstrumentedAttribute[datetime],
    key: InstrumentedAttribute[str],
    *,
    limit: int,
    before: str | None = None,
) -> Sequence[T] | None:
    """Up to `limit` rows of `stmt` (already narrowed to one user's), newest first by
    (created_at, key), older than the row whose key is `before` when given: rows added
    meanwhile never shift or repeat the pages after the first, and rows created in the same
    instant are ordered by key. None when `before` is not one of `stmt`'s rows."""
    if before is not None:
        anchor = session.execute(stmt.with_only_columns(created_at, key).where(key == before))
        found = anchor.first()
        if found is None:
            return None
        at, last = found
        stmt = stmt.where(or_(created_at < at, and_(created_at == at, key < last)))
    return session.scalars(stmt.order_by(created_at.desc(), key.desc()).limit(limit)).all()


def page(
    session: Session,
    stmt: Select[T],
    created_at: InstrumentedAttribute[datetime],
    key: InstrumentedAttribute[str],
    *,
    limit: int,
    before: str | None,
    what: str,
) -> tuple[list[T], T | None]:
    """One page of `newest_first` and its last row when older ones remain (whose key is the
    next page's `before`), else None. A `before` that is not one of the rows is 422
    invalid_cursor; `what` names the rows in its sentence ("jobs", "batches")."""
    rows = newest_first(session, stmt, created_at, key, limit=limit + 1, before=before)
    if rows is None:
        raise DomainError(
            f"before must be the id of one of your {what}, as the next page's address in the "
            f"Link header gives it; leave it out for your newest {what}.",
            code="invalid_cursor",
            status_code=422,
        )
    found = list(rows[:limit])
    return found, (found[-1] if len(rows) > limit else None)
