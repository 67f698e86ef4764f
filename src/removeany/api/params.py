"""Bounded request parameters: an id beyond the database's integer range is a 422, not a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Query

MAX_ID = 2_147_483_647  # PostgreSQL `integer`; SQLite's limit is larger

RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
OptionalRowIdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
FormRowId = Annotated[int, Form(ge=0, le=MAX_ID)]
