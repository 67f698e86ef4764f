"""Batches through the JSON API on the embedded queue: ZIPs with folders, per-item results and
refunds, limits, cancelling, progress by polling and server-sent events."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from removeany.catalog import prices
from removeany.context import Context
from removeany.credits import service as ledger
from tests.batches._images import make_zip, photo_paths, photo_zip, plain_image, small_photo
from tests.batches._ledger import audit
from tests.helpers import make_api_key, make_user, wait_for_batch


def test_zip_batch_keeps_folders_refunds_failures_and_zips_results(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photos = photo_paths(3)
    archive = make_zip(
        {
            "shoot/day1/a.jpg": small_photo(photos[0]),
            "shoot/day2/b.jpg": small_photo(photos[1]),
            "top.png": small_photo(photos[2], fmt="PNG"),
            "shoot/flat.png": plain_image(),
            "notes.txt": b"not an image",
            "__MACOSX/shoot/._a.jpg": b"junk",
            "../escape.jpg": small_photo(photos[0]),
        }
    )
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"options": json.dumps({"format": "webp"}), "name": "shoot.zip"},
        files={"archive": ("shoot.zip", archive, "application/zip")},
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["total"] == 4 and created["service"] == "remove_background"
    rejected = {r["path"]: r["code"] for r in created["rejected"]}
    assert rejected == {"notes.txt": "unsupported_format", "../escape.jpg": "unsafe_path"}

    batch = wait_for_batch(client, created["id"], headers)
    assert batch["status"] == "completed" and batch["progress"] == 1.0
    assert batch["counts"] == {
        "queued": 0,
        "running": 0,
        "succeeded": 3,
        "failed": 1,
        "cancelled": 0,
    }
    assert batch["charged"] == 3 and batch["finished_at"] is not None

    items = {i["relative_path"]: i for i in client.get(batch["items_url"], headers=headers).json()}
    assert set(items) == {"shoot/day1/a.jpg", "shoot/day2/b.jpg", "top.png", "shoot/flat.png"}
    failed = items["shoot/flat.png"]
    assert failed["status"] == "failed" and failed["error_code"] == "unknown_foreground"
    assert failed["charged"] == 0 and failed["error_message"]
    assert items["top.png"]["result_path"] == "top.webp"

    ledger = audit(ctx, user.id)
    assert ledger["captured"] == 3 and ledger["held"] == 0 and ledger["available"] == 7
    assert not ledger["open_holds"] and not ledger["double_captures"]

    download = client.get(batch["results_url"], headers=headers)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        assert sorted(zf.namelist()) == [
            "NOT-INCLUDED.txt",
            "shoot/day1/a.webp",
            "shoot/day2/b.webp",
            "top.webp",
        ]
        with Image.open(io.BytesIO(zf.read("shoot/day1/a.webp"))) as im:
            assert im.format == "WEBP" and im.mode == "RGBA"


def test_many_files_in_one_request(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photos = photo_paths(2)
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        files=[
            ("files", ("one.jpg", small_photo(photos[0], 200))),
            ("files", ("two.jpg", small_photo(photos[1], 200))),
        ],
    )
    assert response.status_code == 202, response.text
    batch = wait_for_batch(client, response.json()["id"], headers)
    assert batch["counts"]["succeeded"] == 2 and batch["charged"] == 2
    listed = client.get("/api/v1/batches", headers=headers).json()
    assert [b["id"] for b in listed] == [batch["id"]]


def test_names_lose_direction_and_invisible_characters_as_single_uploads_do(
    client: TestClient, ctx: Context
) -> None:
    """A right-to-left override would show `photo<U+202E>gnp.jpg` as `photojpg.png` in lists
    and in the results ZIP; batches keep names by the single uploads' rule
    (jobs.service.visible_name), and a folder that is '..' once cleaned is refused."""
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photos = photo_paths(2)
    archive = make_zip(
        {
            "shoot\u2067/photo\u202egnp.jpg": small_photo(photos[0], 200),
            "..\u202e/escape.jpg": small_photo(photos[1], 200),
        }
    )
    response = client.post(
        "/api/v1/batches",
        headers=headers,
        files={"archive": ("shoot.zip", archive, "application/zip")},
    )
    assert response.status_code == 202, response.text
    created = response.json()
    assert {r["path"]: r["code"] for r in created["rejected"]} == {"../escape.jpg": "unsafe_path"}
    batch = wait_for_batch(client, created["id"], headers)
    items = client.get(batch["items_url"], headers=headers).json()
    assert [(i["relative_path"], i["result_path"]) for i in items] == [
        ("shoot/photognp.jpg", "shoot/photognp.png")
    ]
    sent = client.post(
        "/api/v1/batches",
        headers=headers,
        files=[("files", ("\u202ddraw\u200bing.jpg", small_photo(photos[1], 200)))],
    )
    assert sent.status_code == 202, sent.text
    batch = wait_for_batch(client, sent.json()["id"], headers)
    with zipfile.ZipFile(
        io.BytesIO(client.get(batch["results_url"], headers=headers).content)
    ) as zf:
        assert zf.namelist() == ["drawing.png"]


def test_batch_items_are_priced_as_the_same_photos_alone(client: TestClient, ctx: Context) -> None:
    """Each item is priced at the tier of its own result, as a single job would be: a 320 px
    photo comes out preview-sized (1 credit here), a 720 px one full-sized (3)."""
    with ctx.db.transaction() as s:
        prices.set_price(s, "remove_background", "full", 3, now=ctx.now(), admin_id=None)
    user = make_user(ctx, credits=3)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = photo_paths(1)[0]
    files = [
        ("files", ("small.jpg", small_photo(photo, 320))),
        ("files", ("large.jpg", small_photo(photo, 720))),
    ]
    short = client.post("/api/v1/batches", headers=headers, files=files)
    assert short.status_code == 402, short.text
    assert short.json()["error"]["message"].startswith(
        "This needs 4 credits and your balance is 3."
    )
    with ctx.db.transaction() as s:
        ledger.grant(
            s, user.id, 1, source="admin", now=ctx.now(), expires_at=ctx.now() + timedelta(days=1)
        )
    response = client.post("/api/v1/batches", headers=headers, files=files)
    assert response.status_code == 202, response.text
    batch = wait_for_batch(client, response.json()["id"], headers)
    assert batch["counts"]["succeeded"] == 2 and batch["charged"] == 4
    items = client.get(batch["items_url"], headers=headers).json()
    costs = {item["relative_path"]: (item["cost"], item["charged"]) for item in items}
    assert costs == {"small.jpg": (1, 1), "large.jpg": (3, 3)}
    assert audit(ctx, user.id)["available"] == 0


def test_limits_and_refusals(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=2)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 120)
    three = [("files", (f"{n}.jpg", photo)) for n in range(3)]

    short = client.post("/api/v1/batches", headers=headers, files=three)
    assert short.status_code == 402, short.text  # 3 credits needed, 2 held: nothing created
    # said for the whole batch, not for the item where the credits ran out
    assert short.json()["error"]["message"].startswith(
        "This needs 3 credits and your balance is 2."
    )
    ledger = audit(ctx, user.id)
    assert ledger["held"] == 0 and ledger["available"] == 2 and not ledger["jobs"]

    ctx.settings.batch_max_items = 1  # two files are read, the third is refused as it starts
    many = client.post("/api/v1/batches", headers=headers, files=three)
    assert many.status_code == 413 and many.json()["error"]["code"] == "batch_too_large"
    ctx.settings.batch_max_items = 100

    ctx.settings.batch_max_pixels = 120 * 120
    pixels = client.post("/api/v1/batches", headers=headers, files=three[:2])
    assert pixels.status_code == 413, pixels.text
    ctx.settings.batch_max_pixels = 10**9

    bad = client.post(
        "/api/v1/batches", headers=headers, data={"options": '{"format": "gif"}'}, files=three[:1]
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_format"
    junk = client.post(
        "/api/v1/batches", headers=headers, files={"archive": ("x.zip", b"PK\x03\x04broken")}
    )
    assert junk.status_code == 400 and junk.json()["error"]["code"] == "invalid_archive"
    empty = client.post(
        "/api/v1/batches",
        headers=headers,
        files={"archive": ("x.zip", make_zip({"readme.txt": b"hello"}))},
    )
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_batch"
    assert client.post("/api/v1/batches", files=three[:1]).status_code == 401
    assert not audit(ctx, user.id)["jobs"]


def test_zip_bomb_and_oversized_members_are_refused(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    ctx.settings.max_upload_bytes = 1024 * 1024
    bomb = make_zip(
        {"bomb.png": b"\x89PNG\r\n\x1a\n" + bytes(50 * 1024 * 1024), "ok.jpg": plain_image()}
    )
    assert len(bomb) < 200 * 1024  # 50 MB that compresses to almost nothing
    response = client.post("/api/v1/batches", headers=headers, files={"archive": ("b.zip", bomb)})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["total"] == 1
    assert body["rejected"][0]["path"] == "bomb.png"
    assert body["rejected"][0]["code"] == "file_too_large"
    ctx.settings.batch_max_bytes = 1000
    too_big = client.post(
        "/api/v1/batches",
        headers=headers,
        files={"archive": ("c.zip", make_zip({"a.png": plain_image(), "b.png": plain_image()}))},
    )
    assert too_big.status_code == 413


def test_batches_are_private(client: TestClient, ctx: Context) -> None:
    owner = {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=3))}
    other = {"X-Api-Key": make_api_key(ctx, make_user(ctx, "eve@example.com", credits=3))}
    photo = small_photo(photo_paths(1)[0], 120)
    batch = client.post("/api/v1/batches", headers=owner, files={"files": ("a.jpg", photo)}).json()
    for path in ("", "/items", "/results", "/events"):
        assert client.get(f"/api/v1/batches/{batch['id']}{path}", headers=other).status_code == 404
    assert client.post(f"/api/v1/batches/{batch['id']}/cancel", headers=other).status_code == 404
    wait_for_batch(client, batch["id"], owner)


def test_cancel_releases_unstarted_items(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=20)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    archive, _names = photo_zip(12, side=256)
    created = client.post(
        "/api/v1/batches", headers=headers, files={"archive": ("a.zip", archive)}
    ).json()
    cancelled = client.post(f"/api/v1/batches/{created['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] in ("cancelling", "cancelled")
    batch = wait_for_batch(client, created["id"], headers)
    counts = batch["counts"]
    assert batch["status"] == "cancelled" and counts["cancelled"] >= 6
    assert counts["succeeded"] + counts["failed"] + counts["cancelled"] == 12
    ledger = audit(ctx, user.id)
    assert ledger["held"] == 0 and not ledger["open_holds"]
    assert ledger["captured"] == counts["succeeded"] == batch["charged"]
    assert ledger["available"] == 20 - counts["succeeded"]
    items = client.get(batch["items_url"], headers=headers, params={"status": "cancelled"}).json()
    assert len(items) == counts["cancelled"] and items[0]["error_code"] == "cancelled"
    again = client.post(f"/api/v1/batches/{created['id']}/cancel", headers=headers)
    assert again.status_code == 200 and audit(ctx, user.id)["available"] == ledger["available"]


def test_progress_streams_as_server_sent_events(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    archive, names = photo_zip(3, side=200)
    created = client.post(
        "/api/v1/batches", headers=headers, files={"archive": ("a.zip", archive)}
    ).json()
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", created["events_url"], headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and events[-1][1]["counts"]["succeeded"] == 3
    finished = {d["relative_path"] for k, d in events if k == "item" and d["status"] == "succeeded"}
    assert finished == set(names)
    progress = [d["progress"] for k, d in events if k == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_result_names_follow_the_output_format(client: TestClient, ctx: Context, fmt: str) -> None:
    user = make_user(ctx, credits=5)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = photo_paths(1)[0]
    archive = make_zip(
        {"x/cat.jpg": small_photo(photo, 160), "x/cat.png": small_photo(photo, 160, "PNG")}
    )
    created = client.post(
        "/api/v1/batches",
        headers=headers,
        data={"options": json.dumps({"format": fmt, "bg_color": "ffffff"})},
        files={"archive": ("a.zip", archive)},
    ).json()
    batch = wait_for_batch(client, created["id"], headers)
    with zipfile.ZipFile(
        io.BytesIO(client.get(batch["results_url"], headers=headers).content)
    ) as z:
        assert sorted(z.namelist()) == sorted([f"x/cat.{fmt}", f"x/cat (2).{fmt}"])
