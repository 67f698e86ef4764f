"""The JSON API's contract: what the real app answers, over a real database, storage and
workers."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from removeany.app import create_app
from removeany.context import Context
from tests.helpers import make_api_key, make_user, wait_for_batch

METHODS = ("get", "put", "post", "delete", "patch")
MISSING_ID = {"integer": 2_147_483_000, "string": "0" * 32}
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?")


def photo() -> bytes:
    image = Image.new("RGB", (96, 64), (235, 235, 235))
    ImageDraw.Draw(image).ellipse((28, 12, 68, 56), fill=(40, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    answer = client.get("/api/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


# ---------------------------------------------------------------- targeted


def error_of(answer: Any) -> dict[str, Any]:
    """The JSON API's error body, and nothing else in it."""
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unknown_address_and_wrong_method_answer_in_the_api_error_shape(
    client: TestClient,
) -> None:
    """Starlette's own refusals under /api/ were `{"detail": "Not Found"}`, unlike every
    other refusal there."""
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    assert "/api/docs" in error_of(missing)["message"]
    wrong = client.put("/api/v1/jobs", headers={"X-Api-Key": "rak_whatever"})
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"
    assert error_of(wrong) == {
        "code": "method_not_allowed",
        "message": "PUT is not allowed on /api/v1/jobs; use GET, POST.",
    }
    assert error_of(client.delete("/api/v1/prices"))["code"] == "method_not_allowed"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_json_body_sent_as_something_else_is_415(client: TestClient) -> None:
    """A form or text/plain sent to a JSON route was a 422 saying 'Input should be a valid
    dictionary', naming no field a client could fix; broken JSON was '9: JSON decode
    error'."""
    login = {"email": "ada@example.com", "password": "correct horse battery"}
    for sent in (
        {"data": login},
        {"content": json.dumps(login), "headers": {"content-type": "text/plain"}},
        {"content": json.dumps(login)},
    ):
        answer = client.post("/api/v1/auth/login", **sent)
        assert answer.status_code == 415, (sent, answer.text)
        assert error_of(answer)["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in error_of(answer)["message"]
    broken = client.post(
        "/api/v1/auth/login", content=b'{"email":', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert error_of(broken) == {
        "code": "invalid_json",
        "message": "The body is not valid JSON (at character 9). Fix it and retry.",
    }
    # JSON that is not an object is still the body's own error, and so is a missing field.
    listed = client.post("/api/v1/auth/login", json=[login])
    assert listed.status_code == 422 and error_of(listed)["code"] == "invalid_request"
    partial = client.post("/api/v1/auth/login", json={"email": "ada@example.com"})
    assert partial.status_code == 422 and "password" in error_of(partial)["message"]


@pytest.fixture
def finished_batch(client: TestClient, ctx: Context) -> tuple[str, dict[str, str]]:
    headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=10))}
    batch = client.post(
        "/api/v1/batches",
        headers=headers,
        files=[("files", (name, photo(), "image/png")) for name in ("a.png", "b.png")],
        data={"service": "remove_watermark"},
    )
    assert batch.status_code == 202, batch.text
    wait_for_batch(client, batch.json()["id"], headers)
    return batch.json()["id"], headers


def test_batch_item_paging_out_of_range_is_refused_not_a_500(
    client: TestClient, finished_batch: tuple[str, dict[str, str]]
) -> None:
    """An offset past the database's integer range was a 500 (SQLite and PostgreSQL alike);
    other out-of-range values were changed silently. The bounds are now declared, documented
    and answered with 422 like the admin lists' `limit`."""
    batch_id, headers = finished_batch
    url = f"/api/v1/batches/{batch_id}/items"
    for query in (
        "offset=99999999999999999999",
        "offset=-1",
        "limit=0",
        "limit=-1",
        "limit=5001",
        "limit=99999999999999999999",
    ):
        answer = client.get(f"{url}?{query}", headers=headers)
        assert answer.status_code == 422, (query, answer.text)
        name = query.split("=")[0]
        assert error_of(answer)["message"].startswith(f"query.{name}: "), answer.text
    page = client.get(f"{url}?offset=1&limit=1", headers=headers)
    assert [item["relative_path"] for item in page.json()] == ["b.png"]
    assert client.get(f"{url}?offset=2147483647&limit=5000", headers=headers).json() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_documented_paging_bounds(doc: dict[str, Any]) -> None:
    params = doc["paths"]["/api/v1/batches/{batch_id}/items"]["get"]["parameters"]
    schema = {p["name"]: p["schema"] for p in params}
    assert (schema["offset"]["minimum"], schema["offset"]["maximum"]) == (0, 2_147_483_647)
    assert (schema["limit"]["minimum"], schema["limit"]["maximum"]) == (1, 5000)


def test_batch_events_since_needs_a_time_zone(
    client: TestClient, finished_batch: tuple[str, dict[str, str]]
) -> None:
    """A `since` without a time zone was compared with the database's aware times inside the
    stream: the answer was a 200 whose stream broke off with nothing in it."""
    batch_id, headers = finished_batch
    url = f"/api/v1/batches/{batch_id}/events"
    naive = client.get(url, params={"since": "2026-01-01T00:00:00"}, headers=headers)
    assert naive.status_code == 422, naive.text
    assert error_of(naive)["message"].startswith("query.since: ")
    aware = client.get(url, params={"since": "2026-01-01T00:00:00Z"}, headers=headers)
    assert aware.status_code == 200 and "event: done" in aware.text
    offset = client.get(url, params={"since": "2026-01-01T08:00:00+08:00"}, headers=headers)
    assert offset.status_code == 200 and "event: done" in offset.text
