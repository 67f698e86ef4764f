"""The API's contract: the OpenAPI document (/api/openapi.json, what /api/docs shows) against
what the real app answers, over a real database, storage and workers.

`test_every_operation_answers_as_documented` walks the document: every operation is called
as a stranger, as its rightful caller (with real ids where the walk has them) and with ids
that do not exist, and every answer's status must be one the operation lists by number, its
body must match that response's schema exactly (no field missing, none undocumented) and its
times must carry a time zone. The targeted tests below pin each disagreement found."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_spec
from PIL import Image, ImageDraw

from removeany.accounts.models import User
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


# ---------------------------------------------------------------- the document itself


def test_openapi_document_is_valid_and_self_contained(doc: dict[str, Any]) -> None:
    validate_spec(doc)  # OpenAPI 3.1, every $ref included
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "([^"]+)"', text)):
        assert resolve(doc, {"$ref": ref}), ref


def test_refusals_are_documented_with_the_body_the_server_sends(doc: dict[str, Any]) -> None:
    """FastAPI documents a 422 as `{"detail": [...]}`, which this server never sends: every
    refusal of /api/v1 is `{"error": {code, message}}`, of /v1.0/ remove.bg's `{"errors"}`."""
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for path, method, op in operations(doc):
        expected = "RemoveBgErrors" if path.startswith("/v1.0/") else "ErrorBody"
        refusals = {s: r for s, r in op["responses"].items() if s.startswith("4")}
        assert "4XX" in refusals, (method, path)
        for status, response in refusals.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{expected}"}, (method, path, status)
        if path.startswith("/v1.0/"):
            assert "422" not in refusals  # remove.bg answers 400 to any invalid parameter
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            assert {"413", "415", "422"} <= set(refusals), (method, path)


# ---------------------------------------------------------------- the walk


class Walk:
    """Requests made from the document, and the answers checked against it."""

    def __init__(self, client: TestClient, doc: dict[str, Any]) -> None:
        self.client = client
        self.doc = doc
        self.problems: list[str] = []
        self.succeeded: set[str] = set()
        self.components = doc["components"]

    def sample(self, schema: dict[str, Any], name: str = "") -> Any:
        schema = resolve(self.doc, schema)
        if "anyOf" in schema:
            return self.sample(next(s for s in schema["anyOf"] if s.get("type") != "null"), name)
        if "default" in schema:
            return schema["default"]
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "object":
            props = schema.get("properties", {})
            return {k: self.sample(props[k], k) for k in schema.get("required", [])}
        if kind == "array":
            return []
        if kind == "integer":
            return max(1, schema.get("minimum", 1))
        if kind == "boolean":
            return True
        if schema.get("format") == "email" or name == "email":
            return "nobody@example.com"
        if schema.get("format") == "date-time":
            return "2026-01-01T12:00:00Z"
        return "x" * max(8, schema.get("minLength", 0))

    def request(
        self, path: str, method: str, op: dict[str, Any], ids: dict[str, Any]
    ) -> dict[str, Any]:
        url = path
        query: dict[str, Any] = {}
        for param in op.get("parameters", []):
            schema = resolve(self.doc, param["schema"])
            kind = schema.get("type") or next(
                (s.get("type") for s in schema.get("anyOf", []) if s.get("type") != "null"),
                "string",
            )
            if param["in"] == "path":
                value = ids.get(param["name"], MISSING_ID.get(kind, "x"))
                url = url.replace("{" + param["name"] + "}", str(value))
            elif param["in"] == "query" and param.get("required"):
                query[param["name"]] = self.sample(schema, param["name"])
        kwargs: dict[str, Any] = {"params": query}
        content = op.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            kwargs["json"] = self.sample(content["application/json"]["schema"])
        elif "multipart/form-data" in content:
            schema = resolve(self.doc, content["multipart/form-data"]["schema"])
            files, data = [], {}
            for name, prop in schema.get("properties", {}).items():
                prop = resolve(self.doc, prop)
                binary = prop.get("format") == "binary" or (
                    prop.get("items", {}).get("format") == "binary"
                )
                if binary and (name in schema.get("required", []) or name == "files"):
                    files.append((name, ("photo.png", photo(), "image/png")))
                elif name in schema.get("required", []):
                    data[name] = str(self.sample(prop, name))
            kwargs.update(files=files or None, data=data or None)
        return {"method": method.upper(), "url": url, **kwargs}

    def check(self, label: str, op: dict[str, Any], answer: Any) -> None:
        status = str(answer.status_code)
        where = f"{label} -> {status} {answer.text[:160]!r}"
        if answer.status_code >= 500:
            self.problems.append(f"server error: {where}")
            return
        documented = op["responses"].get(status)
        if documented is None:
            self.problems.append(f"status not documented: {where}")
            return
        if answer.status_code < 300:
            self.succeeded.add(label.split(" as ")[0])
        content = documented.get("content", {})
        media = answer.headers.get("content-type", "").split(";")[0]
        if answer.status_code == 204 or not content:
            return
        if media not in content and media.split("/")[0] + "/*" not in content:
            self.problems.append(f"content type {media} not documented: {where}")
            return
        schema = content.get(media, {}).get("schema")
        if media != "application/json" or not schema:
            return
        body = answer.json()
        strict = {**self.strict(schema), "components": self.strict_components()}
        validator = Draft202012Validator(strict, format_checker=FormatChecker())
        for error in validator.iter_errors(body):
            self.problems.append(f"body does not match: {where}: {error.message[:200]}")
        self.check_fields(label, resolve(self.doc, schema), body)
        for value in strings(body):
            if DATETIME.match(value) and not re.search(r"(Z|[+-]\d\d:\d\d)$", value):
                self.problems.append(f"time without a zone: {label}: {value}")

    def strict(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A schema that refuses fields it does not name (what is sent but not documented)."""
        if not isinstance(schema, dict):
            return schema
        out = {k: self.strict_value(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out

    def strict_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.strict(value)
        if isinstance(value, list):
            return [self.strict_value(v) for v in value]
        return value

    def strict_components(self) -> dict[str, Any]:
        return {"schemas": {k: self.strict(v) for k, v in self.components["schemas"].items()}}

    def check_fields(self, label: str, schema: dict[str, Any], body: Any) -> None:
        """Every documented field is sent (none documented but never there)."""
        if isinstance(body, list):
            items = resolve(self.doc, schema.get("items", {}))
            for element in body:
                self.check_fields(label, items, element)
            return
        if isinstance(body, dict) and "properties" in schema:
            missing = set(schema["properties"]) - set(body)
            if missing:
                self.problems.append(f"documented but not sent: {label}: {sorted(missing)}")


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def test_every_operation_answers_as_documented(
    client: TestClient, ctx: Context, doc: dict[str, Any]
) -> None:
    user = make_user(ctx, credits=100)
    key = make_api_key(ctx, user)
    admin = make_user(ctx, "root@example.com", credits=0)
    with ctx.db.transaction() as s:
        row = s.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    admin_key = make_api_key(ctx, admin)
    victim = make_user(ctx, "victim@example.com", credits=5)
    headers = {"X-Api-Key": key}
    job = client.post(
        "/api/v1/jobs",
        headers=headers,
        files={"file": ("photo.png", photo(), "image/png")},
        data={"service": "remove_watermark", "wait": "true", "boxes": "[[30, 14, 36, 40]]"},
    )
    assert job.status_code == 202 and job.json()["status"] == "succeeded", job.text
    batch = client.post(
        "/api/v1/batches",
        headers=headers,
        files=[("files", ("a.png", photo(), "image/png"))],
        data={"service": "remove_watermark"},
    )
    assert batch.status_code == 202, batch.text
    wait_for_batch(client, batch.json()["id"], headers)
    real = {
        "job_id": job.json()["id"],
        "batch_id": batch.json()["id"],
        "version": client.get("/api/v1/legal/current").json()["version"],
        "user_id": victim.id,
        "service": "remove_background",
    }
    walk = Walk(client, doc)
    for path, method, op in operations(doc):
        admin_only = path.startswith("/api/v1/admin")
        who = admin_key if admin_only else key
        label = f"{method.upper()} {path}"
        for as_whom, credentials, ids in (
            ("a stranger", {}, real),
            ("a user who is not an admin", headers, real),
            ("its caller", {"X-Api-Key": who}, real),
            ("its caller, ids missing", {"X-Api-Key": who}, {}),
        ):
            if as_whom.endswith("missing") and "{" not in path:
                continue
            if as_whom.endswith("not an admin") and not admin_only:
                continue
            spec = walk.request(path, method, op, ids)
            answer = client.request(headers=credentials, **spec)
            walk.check(f"{label} as {as_whom}", op, answer)
    assert walk.problems == [], "\n".join(walk.problems)
    # The walk is worth something only if it reached the operations' successes.
    assert len(walk.succeeded) >= 30, sorted(walk.succeeded)


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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_form_route_sent_json_is_415(
    client: TestClient, ctx: Context, doc: dict[str, Any]
) -> None:
    """An upload route sent JSON answered 422 'file: Field required', though the file was
    not missing but sent the wrong way; the batch route already said so (400 invalid_upload)."""
    headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx))}
    for url in ("/api/v1/jobs", "/api/v1/watermark/detect"):
        answer = client.post(url, headers=headers, json={"service": "remove_background"})
        assert answer.status_code == 415, (url, answer.text)
        assert error_of(answer)["code"] == "unsupported_media_type"
        assert "multipart/form-data" in error_of(answer)["message"]
        assert "415" in doc["paths"][url]["post"]["responses"]
    # A form without its file is still that field's error.
    bare = client.post("/api/v1/jobs", headers=headers, data={"service": "remove_background"})
    assert bare.status_code == 422 and error_of(bare)["message"].startswith("file: ")
