"""Gaps an API contract audit found: the job and batch lists had no paging, a batch's items
took any `status`, and an unhandled error under /api/ and /v1.0/ was a plain-text 500. Real
app, real database (SQLite and PostgreSQL), real job rows and files."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from removeany.accounts.models import User
from removeany.app import create_app
from removeany.batches import repository as batches
from removeany.batches.models import Batch
from removeany.context import Context
from removeany.jobs import repository as jobs
from removeany.jobs.models import Job
from tests.api.test_contract import error_of, photo
from tests.helpers import make_api_key, make_user, wait_for_batch


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as test_client:
        yield test_client


def add_jobs(
    ctx: Context,
    user: User,
    count: int,
    *,
    start: int = 0,
    tied: bool = False,
    status: str = "succeeded",
) -> None:
    """Job rows as submission leaves them, `count` of them, a minute apart (or, `tied`, all
    created in the same instant, so only the id orders them)."""
    now = ctx.now()
    with ctx.db.transaction() as session:
        for n in range(start, start + count):
            session.add(
                Job(
                    id=f"{n:04d}".rjust(32, "a"),
                    user_id=user.id,
                    service="remove_background",
                    status=status,
                    options={},
                    cost=1,
                    input_key=f"originals/{n}",
                    input_name=f"photo{n}.png",
                    input_width=96,
                    input_height=64,
                    created_at=now if tied else now - timedelta(minutes=1000 - n),
                )
            )


def limits_outside_1_to_200_are_refused(
    client: TestClient, path: str, headers: dict[str, str]
) -> None:
    """`limit` 0, 201, -1 or not a number is 422 naming it; 200 is taken (the caller has 2)."""
    for limit in ("0", "201", "-1", "x"):
        answer = client.get(path, params={"limit": limit}, headers=headers)
        assert answer.status_code == 422, (limit, answer.text)
        assert error_of(answer)["message"].startswith("query.limit: ")
    assert len(client.get(path, params={"limit": 200}, headers=headers).json()) == 2


def next_link(answer: Any) -> str | None:
    link = answer.headers.get("link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    return match.group(1)


def test_job_list_pages_with_a_cursor_that_holds_while_jobs_arrive(
    client: TestClient, ctx: Context
) -> None:
    """GET /api/v1/jobs answered the 50 newest jobs and nothing could reach the others."""
    user = make_user(ctx)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    add_jobs(ctx, user, 57)
    first = client.get("/api/v1/jobs", headers=headers)
    assert first.status_code == 200
    assert isinstance(first.json(), list) and len(first.json()) == 50  # the default, as before
    ids = [job["id"] for job in first.json()]
    url = next_link(first)
    assert url is not None and url.startswith("/api/v1/jobs?")
    # Jobs submitted meanwhile are newer: they neither shift nor repeat the next page.
    add_jobs(ctx, user, 3, start=500)
    rest = client.get(url, headers=headers)
    assert rest.status_code == 200 and next_link(rest) is None
    ids += [job["id"] for job in rest.json()]
    assert ids == [f"{n:04d}".rjust(32, "a") for n in reversed(range(57))]
    # A small page size walks all 60, newest first, each once.
    seen: list[str] = []
    link: str | None = "/api/v1/jobs?limit=7"
    while link is not None:
        page = client.get(link, headers=headers)
        assert page.status_code == 200 and len(page.json()) <= 7
        seen += [job["id"] for job in page.json()]
        link = next_link(page)
    assert len(seen) == 60 == len(set(seen))
    created = [
        job["created_at"] for job in client.get("/api/v1/jobs?limit=60", headers=headers).json()
    ]
    assert created == sorted(created, reverse=True)


def test_job_list_cursor_orders_jobs_created_in_the_same_instant(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    add_jobs(ctx, user, 5, tied=True)
    seen: list[str] = []
    link: str | None = "/api/v1/jobs?limit=2"
    while link is not None:
        page = client.get(link, headers=headers)
        seen += [job["id"] for job in page.json()]
        link = next_link(page)
    assert seen == [f"{n:04d}".rjust(32, "a") for n in reversed(range(5))]


def test_job_list_refuses_a_cursor_or_limit_it_cannot_honour(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    add_jobs(ctx, user, 2)
    other = make_user(ctx, "grace@example.com")
    add_jobs(ctx, other, 1, start=900)
    for before in ("0" * 32, f"{900:04d}".rjust(32, "a")):  # missing, someone else's
        answer = client.get("/api/v1/jobs", params={"before": before}, headers=headers)
        assert answer.status_code == 422, answer.text
        assert error_of(answer)["code"] == "invalid_cursor"
        assert "Link header" in error_of(answer)["message"]
    limits_outside_1_to_200_are_refused(client, "/api/v1/jobs", headers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_job_list_paging_is_documented(client: TestClient) -> None:
    op = client.get("/api/openapi.json").json()["paths"]["/api/v1/jobs"]["get"]
    schema = {p["name"]: p["schema"] for p in op["parameters"]}
    assert (schema["limit"]["minimum"], schema["limit"]["maximum"], schema["limit"]["default"]) == (
        1,
        200,
        50,
    )
    assert "before" in schema
    assert "Link" in op["responses"]["200"]["headers"]
    assert "422" in op["responses"]


def add_batches(
    ctx: Context, user: User, count: int, *, start: int = 0, tied: bool = False
) -> None:
    """Batch rows (no items), `count` of them, a minute apart or all in the same instant."""
    now = ctx.now()
    with ctx.db.transaction() as session:
        for n in range(start, start + count):
            session.add(
                Batch(
                    id=f"{n:04d}".rjust(32, "b"),
                    user_id=user.id,
                    name=f"batch {n}",
                    service="remove_background",
                    options={},
                    total_items=0,
                    total_bytes=0,
                    total_pixels=0,
                    created_at=now if tied else now - timedelta(minutes=1000 - n),
                )
            )


def batch_id(n: int) -> str:
    return f"{n:04d}".rjust(32, "b")


def test_batch_list_pages_as_the_job_list_does(client: TestClient, ctx: Context) -> None:
    """GET /api/v1/batches answered the 50 newest batches; older ones were out of reach."""
    user = make_user(ctx)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    add_batches(ctx, user, 57)
    first = client.get("/api/v1/batches", headers=headers)
    assert first.status_code == 200 and len(first.json()) == 50
    url = next_link(first)
    assert url == f"/api/v1/batches?before={batch_id(7)}&limit=50"
    add_batches(ctx, user, 3, start=500)  # newer: they neither shift nor repeat the next page
    rest = client.get(url, headers=headers)
    assert rest.status_code == 200 and next_link(rest) is None
    ids = [b["id"] for b in first.json() + rest.json()]
    assert ids == [batch_id(n) for n in reversed(range(57))]
    seen: list[str] = []
    link: str | None = "/api/v1/batches?limit=7"
    while link is not None:
        page = client.get(link, headers=headers)
        assert page.status_code == 200 and len(page.json()) <= 7
        seen += [b["id"] for b in page.json()]
        link = next_link(page)
    assert len(seen) == 60 == len(set(seen))


def test_batch_list_cursor_orders_batches_created_in_the_same_instant(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    add_batches(ctx, user, 5, tied=True)
    seen: list[str] = []
    link: str | None = "/api/v1/batches?limit=2"
    while link is not None:
        page = client.get(link, headers=headers)
        seen += [b["id"] for b in page.json()]
        link = next_link(page)
    assert seen == [batch_id(n) for n in reversed(range(5))]


def test_batch_list_refuses_a_cursor_or_limit_it_cannot_honour(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    add_batches(ctx, user, 2)
    add_jobs(ctx, user, 1)
    other = make_user(ctx, "grace@example.com")
    add_batches(ctx, other, 1, start=900)
    # missing, someone else's, one of the caller's jobs (not a batch)
    for before in ("0" * 32, batch_id(900), f"{0:04d}".rjust(32, "a")):
        answer = client.get("/api/v1/batches", params={"before": before}, headers=headers)
        assert answer.status_code == 422, answer.text
        assert error_of(answer)["code"] == "invalid_cursor"
        assert "one of your batches" in error_of(answer)["message"]
    limits_outside_1_to_200_are_refused(client, "/api/v1/batches", headers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_batch_list_paging_is_documented_as_the_job_lists(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    jobs_op, batches_op = paths["/api/v1/jobs"]["get"], paths["/api/v1/batches"]["get"]
    assert batches_op["parameters"] == jobs_op["parameters"]
    limit = next(p for p in batches_op["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 200, 50)
    assert "Link" in batches_op["responses"]["200"]["headers"]
    assert "/api/v1/batches?before=ID" in batches_op["responses"]["200"]["description"]
    assert "422" in batches_op["responses"]


def test_batch_items_refuse_an_unknown_status(client: TestClient, ctx: Context) -> None:
    """`?status=anything` answered [] as if the batch had no such items."""
    headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=10))}
    batch = client.post(
        "/api/v1/batches",
        headers=headers,
        files=[("files", ("a.png", photo(), "image/png"))],
        data={"service": "remove_watermark"},
    )
    assert batch.status_code == 202, batch.text
    wait_for_batch(client, batch.json()["id"], headers)
    url = f"/api/v1/batches/{batch.json()['id']}/items"
    answer = client.get(url, params={"status": "anything"}, headers=headers)
    assert answer.status_code == 422, answer.text
    message = error_of(answer)["message"]
    assert error_of(answer)["code"] == "invalid_request" and message.startswith("query.status: ")
    for allowed in ("queued", "running", "succeeded", "failed", "cancelled"):
        assert allowed in message
    (item,) = client.get(url, headers=headers).json()
    same = client.get(url, params={"status": item["status"]}, headers=headers)
    assert same.status_code == 200 and same.json() == [item]
    other = "queued" if item["status"] != "queued" else "running"
    assert client.get(url, params={"status": other}, headers=headers).json() == []
    op = client.get("/api/openapi.json").json()["paths"]["/api/v1/batches/{batch_id}/items"]
    status = next(p for p in op["get"]["parameters"] if p["name"] == "status")["schema"]
    enum = next(s for s in status["anyOf"] if s.get("type") == "string")["enum"]
    assert enum == ["queued", "running", "succeeded", "failed", "cancelled"]


def test_an_unhandled_error_under_the_api_answers_in_its_error_shape(
    client: TestClient, ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """A job whose stored original cannot be read (here a folder where its file should be:
    a damaged data folder) was a plain-text 'Internal Server Error'."""
    user = make_user(ctx)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    add_jobs(ctx, user, 1)
    job_id = f"{0:04d}".rjust(32, "a")
    (ctx.settings.data_dir / "files" / "originals" / "0").mkdir(parents=True)
    with caplog.at_level(logging.ERROR, logger="removeany.app"):
        answer = client.get(f"/api/v1/jobs/{job_id}/original", headers=headers)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    error = error_of(answer)
    assert error["code"] == "internal_error"
    assert "Try again" in error["message"] and "operator" in error["message"]
    assert "Directory" not in answer.text and "originals" not in answer.text
    logged = [r for r in caplog.records if r.name == "removeany.app" and r.exc_info]
    assert logged and f"/api/v1/jobs/{job_id}/original" in logged[0].getMessage()
    assert isinstance(logged[0].exc_info[1], IsADirectoryError)  # type: ignore[index]
    doc = client.get("/api/openapi.json").json()
    documented = doc["paths"]["/api/v1/jobs/{job_id}/original"]["get"]["responses"]["5XX"]
    schema = documented["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorBody"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unhandled_error_on_a_web_page_is_an_html_page(ctx: Context) -> None:
    """No web page is known to fail, so this app alone has one that does."""
    app = create_app(ctx)

    @app.get("/test-only/fails")
    def fails() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as web:
        page = web.get("/test-only/fails", headers={"accept": "text/html"})
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "Something went wrong on our side" in page.text
        assert "secret internals" not in page.text
        chinese = web.get("/test-only/fails?lang=zh-CN", headers={"accept": "text/html"})
        assert chinese.status_code == 500 and "我们这边出了问题" in chinese.text


def test_an_unhandled_error_under_removebg_answers_in_its_error_shape(
    client: TestClient, ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """A remove.bg client's upload that the server cannot store (here a file where the
    originals folder should be: a damaged data folder) was a plain-text 'Internal Server
    Error', not remove.bg's `{"errors": [...]}`; nothing is charged for it."""
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    originals = ctx.settings.data_dir / "files" / "originals"
    originals.parent.mkdir(parents=True, exist_ok=True)
    originals.write_bytes(b"not a folder")
    with caplog.at_level(logging.ERROR, logger="removeany.app"):
        answer = client.post(
            "/v1.0/removebg",
            headers=headers,
            files={"image_file": ("a.png", photo(), "image/png")},
            data={"size": "preview"},
        )
    assert answer.status_code == 500, answer.text
    assert answer.headers["content-type"] == "application/json"
    (error,) = answer.json()["errors"]
    assert set(error) == {"title", "code", "detail"}
    assert error["code"] == "internal_error" and error["title"] == "Internal Server Error"
    assert "Try again" in error["detail"] and "operator" in error["detail"]
    assert "originals" not in answer.text and "Errno" not in answer.text
    logged = [r for r in caplog.records if r.name == "removeany.app" and r.exc_info]
    assert logged and "/v1.0/removebg" in logged[0].getMessage()
    account = client.get("/v1.0/account", headers=headers).json()
    assert account["data"]["attributes"]["credits"]["total"] == 10
    doc = client.get("/api/openapi.json").json()
    documented = doc["paths"]["/v1.0/removebg"]["post"]["responses"]["5XX"]
    schema = documented["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/RemoveBgErrors"}


def plan_of_page(ctx: Context, read_page: Any) -> str:
    """The database's plan for the last query `read_page(session)` runs (the page itself,
    after the cursor's lookup), as the database would execute it."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(ctx.db.engine, "before_cursor_execute", record)
    try:
        with ctx.db.transaction() as session:
            read_page(session)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", record)
    statement, params = seen[-1]
    sqlite = ctx.db.engine.dialect.name == "sqlite"
    with ctx.db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if not sqlite:
            # Rule out a scan of the whole table; what is left to see is whether it sorts.
            cursor.execute("SET enable_seqscan = off")
        cursor.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement, params)
        return "\n".join(" ".join(str(v) for v in row) for row in cursor.fetchall())


def test_history_pages_are_read_in_order_from_an_index(ctx: Context) -> None:
    """With only the user_id and created_at indexes, both databases read a page by walking
    the created_at index through every user's rows and keeping the one user's (SQLite:
    'SCAN jobs USING INDEX ix_jobs_created_at'), or by sorting all of the user's rows. The
    (user_id, created_at, id) indexes hand one user's rows over in order."""

    ada, bob = make_user(ctx), make_user(ctx, "bob@example.com")
    add_jobs(ctx, ada, 400)
    add_jobs(ctx, bob, 400, start=1000)
    add_batches(ctx, ada, 400)
    add_batches(ctx, bob, 400, start=1000)
    with ctx.db.transaction() as session:
        session.execute(text("ANALYZE"))
    for read_page in (
        lambda s: jobs.page_for_user(s, ada.id, limit=50),
        lambda s: jobs.page_for_user(s, ada.id, limit=50, before=f"{300:04d}".rjust(32, "a")),
        lambda s: batches.page_for_user(s, ada.id, limit=50),
        lambda s: batches.page_for_user(s, ada.id, limit=50, before=batch_id(300)),
    ):
        plan = plan_of_page(ctx, read_page)
        assert "_user_created" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
