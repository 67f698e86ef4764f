"""The API's paged lists (GET /api/v1/jobs, GET /api/v1/batches): the same `limit` and
`before` parameters, the same `Link: <...>; rel="next"` header, documented the same way. The
query is infra.paging's keyset."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Response

from removeany.infra.paging import PAGE_DEFAULT, PAGE_MAX

__all__ = ["PAGE_DEFAULT", "Before", "Limit", "link_next", "listed"]

Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="How many to return, newest first")]
Before = Annotated[
    str | None,
    Query(
        max_length=32,
        description="The id of one of yours: only older ones are listed (the Link header's "
        "next page gives it)",
    ),
]


def listed(path: str, what: str) -> dict[str, Any]:
    """The 200 entry of a paged list's OpenAPI operation, its Link header included."""
    return {
        "description": f"Your {what}, newest first. When older ones remain, the Link header "
        f'names the next page: `<{path}?before=ID&limit=N>; rel="next"`.',
        "headers": {
            "Link": {
                "description": 'The next page (rel="next"); absent on the last page',
                "schema": {"type": "string"},
            }
        },
    }


def link_next(response: Response, path: str, after: str | None, limit: int) -> None:
    """Name the next page in the Link header, when there is one (`after`: its `before`)."""
    if after is not None:
        next_url = f"{path}?{urlencode({'before': after, 'limit': limit})}"
        response.headers["Link"] = f'<{next_url}>; rel="next"'
