"""A web form whose body is over its route's bound (api/limits.py) gets a page in the visitor's
language with the sentence and a way back, not the JSON API's error; page scripts that ask for
JSON, the JSON API and /v1.0 keep their own shapes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from removeany.app import create_app
from removeany.context import build_context
from removeany.infra.settings import Settings
from tests.web.test_pages import form_token, text_of

MAX_UPLOAD = 256 * 1024  # the photo routes' bound is then 3 x this + 1 MB


@pytest.fixture
def small_client(settings: Settings) -> Iterator[TestClient]:
    ctx = build_context(settings.model_copy(update={"max_upload_bytes": MAX_UPLOAD}))
    try:
        with TestClient(create_app(ctx)) as client:
            yield client
    finally:
        ctx.close()


def _too_big() -> bytes:
    return b"x" * (3 * MAX_UPLOAD + 1024 * 1024 + 1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_oversized_form_gets_a_page_in_the_visitors_language(
    small_client: TestClient,
) -> None:
    token = form_token(small_client.get("/").text)
    home = "http://testserver/"
    page = small_client.post(
        "/try",
        data={"csrf_token": token},
        files={"file": ("big.png", _too_big())},
        headers={"Accept": "text/html", "Referer": home},
    )
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    said = text_of(page.text)
    assert "The upload is larger than this page accepts (1 MB)." in said
    assert "Choose a smaller file, or fewer files at once" in said
    assert 'href="/">Back to the form</a>' in page.text

    chinese = small_client.post(
        "/try?lang=zh-CN",
        data={"csrf_token": token},
        files={"file": ("big.png", _too_big())},
        headers={"Accept": "text/html", "Referer": "https://elsewhere.example/"},
    )
    assert chinese.status_code == 413 and '<html lang="zh-CN"' in chinese.text
    assert "上传的内容超出了此页面能接受的大小（1 MB）" in text_of(chinese.text)  # noqa: RUF001
    assert "返回表单" not in chinese.text  # not back to another site's page

    # Any page form: a sign-in form's bound is 1 MB.
    small_client.cookies.delete("lang")
    form = small_client.post(
        "/forgot-password", data={"email": "x" * 1_100_000}, headers={"Accept": "text/html"}
    )
    assert form.status_code == 413 and "larger than this page accepts" in text_of(form.text)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scripts_and_apis_keep_their_shapes(small_client: TestClient) -> None:
    token = form_token(small_client.get("/").text)
    script = small_client.post(
        "/try",
        data={"csrf_token": token},
        files={"file": ("big.png", _too_big())},
        headers={"Accept": "application/json"},
    )
    assert script.status_code == 413
    assert script.json()["error"]["code"] == "request_too_large"
    api = small_client.post("/api/v1/jobs", files={"file": ("big.png", _too_big())})
    assert api.status_code == 413 and api.json()["error"]["code"] == "request_too_large"
    removebg = small_client.post("/v1.0/removebg", files={"image_file": ("big.png", _too_big())})
    assert removebg.status_code == 413
    assert removebg.json()["errors"][0]["code"] == "file_too_large"
