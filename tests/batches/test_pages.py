"""The batch web pages over the real app: the upload form goes through the same submission as
the API, the inline workers process the items, and the pages show progress, failures with
their refunds, cancelling and the results ZIP."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from removeany.context import Context
from tests.batches._images import make_zip, photo_paths, photo_zip, plain_image, small_photo
from tests.batches._ledger import audit
from tests.helpers import make_user, wait_for_batch
from tests.web.test_pages import balance_on, form_token, login, session_csrf, text_of


def session_header(client: TestClient) -> dict[str, str]:
    """The signed-in session's CSRF header, as the pages' scripts send it to the API."""
    return {"X-CSRF-Token": session_csrf(client)}


PROGRESS_RE = re.compile(r'<progress id="batch-progress" max="(\d+)" value="(\d+)"')


def start(client: TestClient, files: list[tuple[str, bytes]], **fields: str) -> str:
    """Post the /batches form; return the new batch's id from the redirect."""
    token = form_token(client.get("/batches").text)
    response = client.post(
        "/batches",
        data={"csrf_token": token, **fields},
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        follow_redirects=False,
    )
    assert response.status_code == 303, text_of(response.text)
    location = response.headers["location"]
    assert re.fullmatch(r"/batches/[0-9a-f]{32}", location), location
    return location.rsplit("/", 1)[1]


def rows(page: str) -> dict[str, list[str]]:
    """The files table as text: path -> [status, details, credits charged, result]."""
    body = page.split('<tbody id="batch-items">', 1)[1].split("</tbody>", 1)[0]
    found = {}
    for row in re.findall(r"<tr\b.*?</tr>", body, re.S):
        cells = [text_of(c) for c in re.findall(r"<td\b.*?</td>", row, re.S)]
        found[cells[0]] = cells[1:]
    return found


def test_pages_need_sign_in_and_belong_to_their_owner(client: TestClient, ctx: Context) -> None:
    signed_out = client.get("/batches", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login?next=/batches"
    missing = client.get("/batches/" + "0" * 32, follow_redirects=False)
    assert missing.headers["location"] == "/login?next=/batches/" + "0" * 32

    make_user(ctx, credits=3)
    make_user(ctx, "eve@example.com", credits=3)
    login(client, "ada@example.com")
    page = client.get("/batches")
    assert page.status_code == 200
    assert '<a href="/batches" aria-current="page">Batches</a>' in page.text
    # The seed catalogue: 1 credit a result up to 25 MP, 2 above (the default size is full).
    assert "Price per image: 1 credit up to 25 MP, 2 credits over 25 MP." in text_of(page.text)
    assert balance_on(page.text) == 3
    assert "No batches yet" in page.text
    batch_id = start(client, [("a.jpg", small_photo(photo_paths(1)[0], 160))])
    wait_for_batch(client, batch_id)
    owner_page = client.get(f"/batches/{batch_id}")
    assert owner_page.status_code == 200 and "a.jpg" in owner_page.text

    client.cookies.clear()
    login(client, "eve@example.com")
    other = client.get(f"/batches/{batch_id}")
    assert other.status_code == 404 and "No such batch" in other.text
    token = form_token(client.get("/batches").text)
    refused = client.post(f"/batches/{batch_id}/cancel", data={"csrf_token": token})
    assert refused.status_code == 404
    assert batch_id not in client.get("/batches").text
    assert client.get(f"/api/v1/batches/{batch_id}/results").status_code == 404


def test_form_starts_a_batch_that_the_workers_finish(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=10)
    login(client, "ada@example.com")
    photos = photo_paths(3)
    files = [(f"{n}-{p.stem}.jpg", small_photo(p, 200)) for n, p in enumerate(photos)]
    batch_id = start(client, files, format="webp", size="preview", name="Catalogue")

    batch = wait_for_batch(client, batch_id)
    assert batch["name"] == "Catalogue" and batch["options"]["format"] == "webp"
    assert batch["options"]["size"] == "preview"
    assert batch["counts"]["succeeded"] == 3 and batch["charged"] == 3

    page = client.get(f"/batches/{batch_id}")
    assert PROGRESS_RE.search(page.text).groups() == ("3", "3")  # type: ignore[union-attr]
    text = text_of(page.text)
    assert "3 of 3 files finished (100%)" in text and "Completed" in text
    table = rows(page.text)
    assert set(table) == {name for name, _ in files}
    assert all(row[0] == "Done" and row[2] == "1" for row in table.values())
    assert all(row[3].startswith("Download") for row in table.values())
    assert 'id="batch-download" class="button" href="/api/v1/batches/' in page.text
    assert re.search(r'<form id="batch-cancel"[^>]*hidden', page.text)
    assert balance_on(page.text) == 7

    download = client.get(f"/api/v1/batches/{batch_id}/results")
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        assert sorted(zf.namelist()) == sorted(n.replace(".jpg", ".webp") for n, _ in files)
        with Image.open(io.BytesIO(zf.read(zf.namelist()[0]))) as im:
            assert im.format == "WEBP" and im.mode == "RGBA"

    listing = client.get("/batches").text
    assert f'href="/batches/{batch_id}"' in listing and "Catalogue" in listing
    assert "3 of 3" in text_of(listing)
    ledger = audit(ctx, user.id)
    assert ledger["captured"] == 3 and ledger["held"] == 0 and not ledger["open_holds"]


def test_a_batch_whose_results_were_deleted_offers_no_dead_downloads(
    client: TestClient, ctx: Context
) -> None:
    """After the retention period (or a deletion on request) the page linked every file and
    the ZIP to results that answer 410 in JSON; it now says which results are gone."""
    make_user(ctx, credits=10)
    login(client, "ada@example.com")
    photos = photo_paths(2)
    files = [(f"{n}-{p.stem}.jpg", small_photo(p, 120)) for n, p in enumerate(photos)]
    batch_id = start(client, files)
    items = client.get(wait_for_batch(client, batch_id)["items_url"]).json()
    gone, kept = sorted(items, key=lambda item: item["relative_path"])
    deleted = client.delete(f"/api/v1/jobs/{gone['job_id']}/files", headers=session_header(client))
    assert deleted.status_code == 200, deleted.text

    page = client.get(f"/batches/{batch_id}")
    table = rows(page.text)
    assert table[gone["relative_path"]][3] == "Deleted"
    assert table[kept["relative_path"]][3].startswith("Download")
    assert f"/api/v1/jobs/{gone['job_id']}/result" not in page.text
    assert not re.search(r'<a id="batch-download"[^>]*hidden', page.text)  # one result left

    assert client.delete(
        f"/api/v1/jobs/{kept['job_id']}/files", headers=session_header(client)
    ).is_success
    page = client.get(f"/batches/{batch_id}")
    assert re.search(r'<a id="batch-download"[^>]*hidden', page.text)  # an empty ZIP
    assert "This file was deleted: images are kept only for a limited time" in text_of(page.text)


def test_form_runs_other_services_with_their_own_options(
    client: TestClient, ctx: Context, astronaut: Path
) -> None:
    make_user(ctx, credits=10)
    login(client, "ada@example.com")
    portrait = astronaut.read_bytes()  # a head-and-shoulders photo
    # Without JavaScript every field is posted; the cut-out ones do not apply to ID photos.
    batch_id = start(
        client,
        [("runner.jpg", portrait)],
        service="id_photo",
        id_size="1inch",
        id_background="blue",
        bg="color",
        bg_color="#ff0000",
        crop="true",
        channels="alpha",
    )
    batch = wait_for_batch(client, batch_id)
    assert batch["options"] == {"size": "1inch", "background": "blue", "format": "jpg"}
    assert batch["counts"]["succeeded"] == 1, batch
    download = client.get(f"/api/v1/batches/{batch_id}/results")
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        assert zf.namelist() == ["runner.jpg"]
        with Image.open(io.BytesIO(zf.read("runner.jpg"))) as photo:
            assert photo.format == "JPEG" and photo.size == (295, 413)
            assert photo.info["dpi"] == (300, 300)
            corner = photo.convert("RGB").getpixel((3, 3))
    assert corner[2] > 150 and corner[0] < 120, f"blue background expected, got {corner}"

    listing = client.get("/batches").text
    for label in ("Portrait cutout", "ID photo", "Remove watermark"):
        assert f">{label}</option>" in listing
    assert 'data-services="id_photo"' in listing


def test_zip_with_a_corrupt_member_and_a_failing_image(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=10)
    login(client, "ada@example.com")
    photos = photo_paths(2)
    good = small_photo(photos[0], 200)
    archive = make_zip(
        {
            "shoot/a.jpg": good,
            "shoot/b.jpg": small_photo(photos[1], 200),
            "shoot/corrupt.jpg": good[: len(good) // 3],  # truncated: cannot be decoded
            "shoot/flat.png": plain_image(),  # decodes, but has no subject: fails in the worker
        }
    )
    batch_id = start(client, [("shoot.zip", archive)], bg="color", bg_color="#ff0000")
    batch = wait_for_batch(client, batch_id)
    assert batch["name"] == "shoot.zip" and batch["options"]["bg_color"] == "ff0000"
    assert batch["total"] == 3
    assert batch["counts"] == {
        "queued": 0,
        "running": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
    }

    page = client.get(f"/batches/{batch_id}").text
    table = rows(page)
    assert set(table) == {"shoot/a.jpg", "shoot/b.jpg", "shoot/corrupt.jpg", "shoot/flat.png"}
    failed = table["shoot/flat.png"]
    assert failed[0] == "Failed" and failed[1].endswith(
        "Refunded: you were not charged for this file."
    )
    assert failed[1].startswith("No foreground subject could be found")
    assert failed[2:] == ["0", ""]  # nothing charged, no result to download
    skipped = table["shoot/corrupt.jpg"]
    assert skipped[0] == "Skipped" and "damaged or truncated" in skipped[1]
    assert skipped[1].endswith("Not charged.") and skipped[2:] == ["0", ""]
    assert table["shoot/a.jpg"][0] == "Done" and table["shoot/a.jpg"][2] == "1"
    counts = text_of(page)
    assert "Failed (refunded) 1" in counts and "Skipped at upload 1" in counts
    assert "Credits charged 2" in counts

    ledger = audit(ctx, user.id)
    assert ledger["captured"] == 2 and ledger["available"] == 8 and ledger["held"] == 0
    with zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/v1/batches/{batch_id}/results").content)
    ) as zf:
        assert sorted(zf.namelist()) == ["NOT-INCLUDED.txt", "shoot/a.png", "shoot/b.png"]


def test_cancel_from_the_page(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=20)
    login(client, "ada@example.com")
    archive, _names = photo_zip(12, side=256)
    batch_id = start(client, [("many.zip", archive)])
    page = client.get(f"/batches/{batch_id}").text
    assert not re.search(r'<form id="batch-cancel"[^>]*hidden', page)

    forged = client.post(f"/batches/{batch_id}/cancel", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    cancelled = client.post(
        f"/batches/{batch_id}/cancel", data={"csrf_token": form_token(page)}, follow_redirects=False
    )
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"/batches/{batch_id}?cancelled=1"
    notice = client.get(cancelled.headers["location"]).text
    assert "The batch was cancelled." in notice

    batch = wait_for_batch(client, batch_id)
    counts = batch["counts"]
    assert batch["status"] == "cancelled" and counts["cancelled"] >= 1
    page = client.get(f"/batches/{batch_id}").text
    table = rows(page)
    assert len(table) == 12
    cancelled_rows = [row for row in table.values() if row[0] == "Cancelled"]
    assert len(cancelled_rows) == counts["cancelled"]
    assert all("You were not charged" in row[1] and row[2] == "0" for row in cancelled_rows)
    assert "Cancelled" in text_of(page.split("</h1>", 1)[1][:400])
    ledger = audit(ctx, user.id)
    assert ledger["held"] == 0 and ledger["captured"] == counts["succeeded"] == batch["charged"]
    assert ledger["available"] == 20 - counts["succeeded"] == balance_on(page)
    # Its originals deleted, a cancelled file still has no result to call deleted.
    item = next(i for i in client.get(batch["items_url"]).json() if i["status"] == "cancelled")
    assert client.delete(
        f"/api/v1/jobs/{item['job_id']}/files", headers=session_header(client)
    ).is_success
    assert rows(client.get(f"/batches/{batch_id}").text)[item["relative_path"]][3] == ""


def test_form_errors_are_sentences(client: TestClient, ctx: Context) -> None:
    user = make_user(ctx, credits=1)
    login(client, "ada@example.com")
    token = form_token(client.get("/batches").text)
    photo = small_photo(photo_paths(1)[0], 120)

    nothing = client.post("/batches", data={"csrf_token": token}, files={"files": ("", b"")})
    assert nothing.status_code == 400
    assert "Choose images, or one ZIP of images, to start a batch." in text_of(nothing.text)

    margin = client.post(
        "/batches",
        data={"csrf_token": token, "crop": "true", "crop_margin": "lots", "format": "jpg"},
        files=[("files", ("a.jpg", photo))],
    )
    assert margin.status_code == 400 and "is not a margin" in text_of(margin.text)
    assert '<option value="jpg" selected>' in margin.text  # the options are kept

    short = client.post(
        "/batches",
        data={"csrf_token": token},
        files=[("files", (f"{n}.jpg", photo)) for n in range(2)],
    )
    assert short.status_code == 402 and 'role="alert"' in short.text

    two_zips = client.post(
        "/batches",
        data={"csrf_token": token},
        files=[("files", (f"{n}.zip", make_zip({"a.jpg": photo}))) for n in range(2)],
    )
    assert two_zips.status_code == 400 and "one ZIP at a time" in text_of(two_zips.text)

    forged = client.post("/batches", data={"csrf_token": "x"}, files=[("files", ("a.jpg", photo))])
    assert forged.status_code == 403
    assert not audit(ctx, user.id)["jobs"]


def test_a_file_too_large_for_the_chosen_format_is_skipped_at_upload(
    client: TestClient, ctx: Context
) -> None:
    """A 16400 px wide photo asked as WebP was charged, run and failed after processing; the
    form now lists it as skipped with what to choose, and charges nothing for it."""
    user = make_user(ctx, credits=10)
    login(client, "ada@example.com")
    wide = io.BytesIO()
    Image.new("RGB", (16400, 40), (200, 200, 200)).save(wide, "PNG")
    batch_id = start(
        client, [("wide.png", wide.getvalue()), ("a.jpg", small_photo(photo_paths(1)[0], 200))],
        format="webp",
    )  # fmt: skip
    batch = wait_for_batch(client, batch_id)
    assert batch["total"] == 1 and batch["counts"]["succeeded"] == 1
    skipped = rows(client.get(f"/batches/{batch_id}").text)["wide.png"]
    assert skipped[0] == "Skipped"
    assert skipped[1] == (
        "A WebP result can be at most 16,383 pixels per side, and this one would be 16400x40; "
        "choose PNG, or size 'preview'. Not charged."
    )
    assert skipped[2:] == ["0", ""]
    chinese = rows(client.get(f"/batches/{batch_id}?lang=zh-CN").text)["wide.png"]
    assert chinese[1].startswith("结果对所选格式来说太大")
    assert audit(ctx, user.id)["available"] == 9
