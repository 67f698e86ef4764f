"""Bad uploads on every surface that takes an image: a stable code and a sentence saying what
to do, nothing charged, and no job, batch item or stored file left behind for a refusal."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from removeany.context import Context
from removeany.credits import service as ledger
from removeany.jobs.models import Job
from tests.batches._images import photo_paths, small_photo
from tests.helpers import make_api_key, make_user
from tests.web.test_pages import form_token

JSON = {"Accept": "application/json"}


def _animation(fmt: str) -> bytes:
    """Two frames of a real photo: an animated GIF, PNG (APNG) or WebP, or a two-page TIFF."""
    with Image.open(photo_paths(1)[0]) as im:
        first = im.convert("RGB")
    first.thumbnail((160, 160))
    second = Image.new("RGB", first.size, (0, 90, 0))
    out = io.BytesIO()
    first.save(out, fmt, save_all=True, append_images=[second])
    return out.getvalue()


def _stored_files(ctx: Context) -> list[Path]:
    root = ctx.settings.data_dir / "files"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _jobs(ctx: Context) -> int:
    with ctx.db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "a.gif"), ("PNG", "a.png"), ("WEBP", "a.webp")])
def test_an_animation_is_refused_on_every_surface_without_a_charge(
    client: TestClient, ctx: Context, fmt: str, name: str
) -> None:
    """The first frame used to be cut out and charged as if it were the photo."""
    user = make_user(ctx, credits=5)
    key = {"X-Api-Key": make_api_key(ctx, user)}
    data = _animation(fmt)

    api = client.post(
        "/api/v1/jobs", headers=key, data={"wait": "true"}, files={"file": (name, data)}
    )
    assert api.status_code == 400, api.text
    assert api.json()["error"]["code"] == "animated_image"
    assert "save the frame you want as PNG or JPEG" in api.json()["error"]["message"]

    removebg = client.post("/v1.0/removebg", headers=key, files={"image_file": (name, data)})
    assert removebg.status_code == 400
    error = removebg.json()["errors"][0]
    assert error["code"] == "invalid_file_type" and "holds 2 frames" in error["detail"]

    detect = client.post("/api/v1/watermark/detect", headers=key, files={"file": (name, data)})
    assert detect.status_code == 400 and detect.json()["error"]["code"] == "animated_image"

    token = form_token(client.get("/").text)
    trial = client.post(
        "/try", data={"csrf_token": token}, files={"file": (name, data)}, headers=JSON
    )
    assert trial.status_code == 400 and trial.json()["error"]["code"] == "animated_image"

    assert _jobs(ctx) == 0 and _stored_files(ctx) == []
    with ctx.db.transaction() as session:
        assert ledger.balance(session, user.id, ctx.now()).available == 5


def test_an_animation_in_a_batch_is_skipped_with_its_reason(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx, credits=5)
    key = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 160)
    batch = client.post(
        "/api/v1/batches",
        headers=key,
        data={"service": "remove_background"},
        files=[("files", ("pages.tif", _animation("TIFF"))), ("files", ("photo.jpg", photo))],
    )
    assert batch.status_code == 202, batch.text
    rejected = batch.json()["rejected"]
    assert [(r["path"], r["code"]) for r in rejected] == [("pages.tif", "animated_image")]
    assert batch.json()["total"] == 1
    assert _jobs(ctx) == 1  # the photo's; nothing stored or charged for the animation


def test_a_file_name_keeps_only_its_last_part_without_control_characters(
    client: TestClient, ctx: Context
) -> None:
    """A multipart file name is the client's to choose: `../../evil.png` and `/etc/abs.jpg`
    became the paths of their results in results.zip (out of the folder it is unpacked to),
    and escape sequences reached the ZIP and the job list."""
    key = {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=10))}
    photo = small_photo(photo_paths(1)[0], 160)
    sent = {
        "../../evil.png": "evil.png",
        "/etc/abs.jpg": "abs.jpg",
        "C:\\Users\\me\\photo.jpg": "photo.jpg",
        "red\x1b[31m\u202ename.jpg": "red[31mname.jpg",
        "..": "image",
    }
    ids = []
    for name, kept in sent.items():
        job = client.post(
            "/api/v1/jobs", headers=key, data={"wait": "true"}, files={"file": (name, photo)}
        )
        assert job.status_code == 202, job.text
        assert job.json()["input_name"] == kept and job.json()["status"] == "succeeded"
        ids.append(job.json()["id"])
    bundle = client.get("/api/v1/jobs/results.zip", params={"ids": ",".join(ids)}, headers=key)
    assert bundle.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
    assert sorted(names) == ["abs.png", "evil.png", "image.png", "photo.png", "red[31mname.png"]
    # A name stored before names were cleaned is cut to its last part in the ZIP too.
    with ctx.db.transaction() as session:
        stored = session.get(Job, ids[0])
        assert stored is not None
        stored.input_name = "../../older.png"
    bundle = client.get("/api/v1/jobs/results.zip", params={"ids": ids[0]}, headers=key)
    assert zipfile.ZipFile(io.BytesIO(bundle.content)).namelist() == ["older.png"]
