"""GET /api/v1/jobs/results.zip: several of one's own results in one streamed ZIP; others' jobs
are not found, deleted files and jobs without a result are listed in a note."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from removeany.context import Context
from removeany.jobs import repository as jobs_repo
from tests.conftest import eval_image
from tests.helpers import make_api_key, make_user

NOTE = "NOT-INCLUDED.txt"


def _submit(client: TestClient, key: str, data: bytes, name: str, **fields: str) -> Any:
    response = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": key},
        data={"wait": "true", **fields},
        files={"file": (name, data)},
    )
    assert response.status_code == 202, response.text
    return response.json()


def _zip(client: TestClient, key: str, ids: list[str]) -> Any:
    return client.get(
        "/api/v1/jobs/results.zip", params={"ids": ",".join(ids)}, headers={"X-Api-Key": key}
    )


def test_results_of_several_jobs_in_one_zip(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=10))
    photo = eval_image("object", "davis16_dog_00030").read_bytes()
    # Two uploads with the same name: the second gets a numbered name in the ZIP.
    first = _submit(client, key, photo, "photo.jpg")
    second = _submit(client, key, photo, "photo.jpg", bg_color="ff0000")
    gone = _submit(client, key, photo, "gone.jpg")
    raced = _submit(client, key, photo, "raced.jpg")
    green = io.BytesIO()
    Image.new("RGB", (300, 300), (10, 120, 10)).save(green, "PNG")
    failed = _submit(client, key, green.getvalue(), "green.png")
    assert [j["status"] for j in (first, second, gone, raced, failed)] == [
        "succeeded",
        "succeeded",
        "succeeded",
        "succeeded",
        "failed",
    ]
    # Deleted on request, and one deleted behind the database's back (a retention race).
    deleted = client.delete(f"/api/v1/jobs/{gone['id']}/files", headers={"X-Api-Key": key})
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    with ctx.db.transaction() as session:
        job = jobs_repo.get(session, raced["id"])
        assert job is not None and job.result_key
        raced_key = job.result_key
    ctx.storage.delete(raced_key)

    ids = [first["id"], second["id"], gone["id"], raced["id"], failed["id"]]
    response = _zip(client, key, [*ids, first["id"]])  # a repeat counts once
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="removeany-results-'
    )
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    assert archive.namelist() == ["photo.png", "photo (2).png", NOTE]
    with Image.open(io.BytesIO(archive.read("photo.png"))) as png:
        assert png.format == "PNG" and png.mode == "RGBA"
    with Image.open(io.BytesIO(archive.read("photo (2).png"))) as coloured:
        assert coloured.mode == "RGB"
        red, green_, blue = coloured.getpixel((0, 0))  # type: ignore[misc]
        assert red > 200 and green_ < 60 and blue < 60, "the background colour was applied"
    note = archive.read(NOTE).decode()
    assert note.startswith("These jobs are not in this ZIP:")
    assert f"gone.jpg (job {gone['id']}): its files were deleted on " in note
    assert f"raced.jpg (job {raced['id']}): its result was deleted while the ZIP" in note
    assert f"green.png (job {failed['id']}): the job failed, so there is no result." in note
    assert first["id"] not in note and second["id"] not in note

    # Nothing left out: no note.
    clean = zipfile.ZipFile(io.BytesIO(_zip(client, key, [first["id"]]).content))
    assert clean.namelist() == ["photo.png"]


def test_only_the_owner_gets_the_zip(client: TestClient, ctx: Context) -> None:
    owner = make_api_key(ctx, make_user(ctx, credits=3))
    other = make_api_key(ctx, make_user(ctx, "eve@example.com", credits=3))
    photo = eval_image("object", "davis16_dog_00030").read_bytes()
    mine = _submit(client, owner, photo, "mine.jpg")
    theirs = _submit(client, other, photo, "theirs.jpg")

    assert _zip(client, owner, [mine["id"]]).status_code == 200
    for key, ids in (
        (other, [mine["id"]]),  # someone else's job
        (owner, [mine["id"], theirs["id"]]),  # one foreign id refuses the whole request
        (owner, ["0" * 32]),  # no such job
    ):
        response = _zip(client, key, ids)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"

    anonymous = client.get("/api/v1/jobs/results.zip", params={"ids": mine["id"]})
    assert anonymous.status_code == 401


def test_the_list_of_ids_is_checked(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=1))
    empty = _zip(client, key, [])
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_ids"
    blanks = _zip(client, key, [" ", ""])
    assert blanks.status_code == 400 and blanks.json()["error"]["code"] == "invalid_ids"
    many = _zip(client, key, [f"{n:032x}" for n in range(101)])
    assert many.status_code == 400 and many.json()["error"]["code"] == "too_many_ids"
    assert "at most 100 jobs" in many.json()["error"]["message"]
