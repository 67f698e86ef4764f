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
