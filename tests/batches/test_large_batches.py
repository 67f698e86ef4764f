"""What a shop's batch of hundreds of photos needs, scaled down to a few small photos: uploads
kept on disk rather than in memory, the limits' errors in the API's shape, names as the shop's
computer wrote them, and a results ZIP that says what is missing from it."""

from __future__ import annotations

import io
import json
import random
import re
import threading
import time
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from removeany.batches import service as batches
from removeany.context import Context
from removeany.jobs import worker
from removeany.moderation import service as moderation
from removeany.moderation.audit import Actor
from tests.batches._images import make_zip, photo_paths, plain_image, small_photo
from tests.batches._ledger import audit
from tests.helpers import make_api_key, make_user, wait_for_batch
from tests.web.test_pages import form_token, login, text_of


def grainy_photo(seed: int, side: int = 300) -> bytes:
    """A JPEG of about 110 KB (sensor noise compresses badly): small in pixels, large in
    bytes, as a shop's phone photos are per pixel."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_files_of_an_upload_are_spooled_to_disk(client: TestClient, ctx: Context) -> None:
    """Starlette keeps each file part under 1 MB in memory: 500 photos of 300 KB sent as
    files held 160 MB in the server (benchmarks/batch_scale.py). Here 24 files of ~110 KB
    must not all be in memory at once (nor 25 MB asked for each when it is read back)."""
    user = make_user(ctx, credits=50)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    files = [("files", (f"shop/{n:02d}.jpg", grainy_photo(n))) for n in range(24)]
    total = sum(len(data) for _, (_, data) in files)
    assert total > 2_500_000
    ctx.stopping.set()  # the workers start nothing meanwhile: only the upload is measured
    warm = client.post("/api/v1/batches", headers=headers, files=files[:1])  # lazy imports
    client.post(f"/api/v1/batches/{warm.json()['id']}/cancel", headers=headers)
    body = client.build_request("POST", "/api/v1/batches", headers=headers, files=files)
    body.read()
    tracemalloc.start()
    try:
        response = client.send(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        if response.status_code == 202:
            client.post(f"/api/v1/batches/{response.json()['id']}/cancel", headers=headers)
        ctx.stopping.clear()
    assert response.status_code == 202, response.text
    # The test client holds the whole body once; the server may add a file or two to it, not
    # every file again (before: 2.0 times the files, after 1.1).
    assert peak < 1.5 * total, f"{peak:,} bytes held while receiving {total:,}"


def test_too_many_files_is_the_batch_limit_in_the_api_shape(
    client: TestClient, ctx: Context
) -> None:
    """One file more than a batch holds is refused with the batch's own code and sentence
    (it was Starlette's 400 {"detail": "Too many files..."}), on the API and on the page."""
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 120)
    ctx.settings.batch_max_items = 2
    files = [("files", (f"{n}.jpg", photo)) for n in range(4)]
    refused = client.post("/api/v1/batches", headers=headers, files=files)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"] == {
        "code": "batch_too_large",
        "message": "A batch holds at most 2 files. Split the upload into several batches.",
    }

    login(client, "ada@example.com")
    token = form_token(client.get("/batches").text)
    page = client.post("/batches", data={"csrf_token": token}, files=files, follow_redirects=False)
    assert page.status_code == 413
    assert "A batch holds at most 2 files." in text_of(page.text)

    not_a_form = client.post(
        "/api/v1/batches", headers={**headers, "Content-Type": "application/json"}, content=b"{}"
    )
    assert not_a_form.status_code == 400
    assert not_a_form.json()["error"]["code"] == "invalid_upload"


def windows_zip(members: dict[str, bytes], encoding: str) -> bytes:
    """A ZIP as a tool that ignores the UTF-8 flag writes it: names in `encoding`, flag unset
    (zipfile itself would write UTF-8 and set the flag, so the names are put in afterwards)."""
    stand_ins = {
        name: f"{n:0{len(name.encode(encoding)) - 4}d}.bin" for n, name in enumerate(members)
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(stand_ins[name], data)
    raw = buf.getvalue()
    for name, stand_in in stand_ins.items():
        assert raw.count(stand_in.encode()) == 2  # local header and central directory
        raw = raw.replace(stand_in.encode(), name.encode(encoding))
    return raw


def test_names_and_what_the_results_zip_leaves_out(client: TestClient, ctx: Context) -> None:
    """Chinese names from a ZIP made on Windows in Chinese (GBK, no UTF-8 flag) read as
    written (they were '╨¼╫╙/╔╠╞╖.jpg'); the same name in two folders stays two files; the
    results ZIP names in NOT-INCLUDED.txt, in the requester's language, every file that is
    not in it and why (a failed item and a skipped file were simply missing)."""
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photos = photo_paths(2)
    archive = windows_zip(
        {
            "鞋子/商品.jpg": small_photo(photos[0], 160),
            "包/商品.jpg": small_photo(photos[1], 160),
            "包/纯色.png": plain_image(side=64),
            "说明.txt": b"not a photo",
        },
        "gbk",
    )
    created = client.post(
        "/api/v1/batches", headers=headers, files={"archive": ("店.zip", archive)}
    )
    assert created.status_code == 202, created.text
    assert [r["path"] for r in created.json()["rejected"]] == ["说明.txt"]
    batch = wait_for_batch(client, created.json()["id"], headers)
    assert batch["counts"]["succeeded"] == 2 and batch["counts"]["failed"] == 1
    items = client.get(batch["items_url"], headers=headers).json()
    assert sorted(i["relative_path"] for i in items) == [
        "包/商品.jpg",
        "包/纯色.png",
        "鞋子/商品.jpg",
    ]

    download = client.get(batch["results_url"], headers=headers)
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        assert sorted(zf.namelist()) == ["NOT-INCLUDED.txt", "包/商品.png", "鞋子/商品.png"]
        note = zf.read("NOT-INCLUDED.txt").decode()
    assert note.splitlines()[0] == "These files of the batch are not in this ZIP:"
    assert "- 包/纯色.png: failed, not charged. " in note
    assert "- 说明.txt: skipped when the upload was read. " in note

    chinese = client.get(batch["results_url"], headers={**headers, "Accept-Language": "zh-CN"})
    with zipfile.ZipFile(io.BytesIO(chinese.content)) as zf:
        note = zf.read("NOT-INCLUDED.txt").decode()
    assert note.splitlines()[0] == "以下批次文件不在此 ZIP 中："  # noqa: RUF001
    assert "- 包/纯色.png：处理失败，未扣费。" in note  # noqa: RUF001


def test_results_zip_of_a_cancelled_batch_names_the_cancelled_files(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 120)
    ctx.stopping.set()  # nothing starts: every item is cancelled
    try:
        created = client.post(
            "/api/v1/batches",
            headers=headers,
            files=[("files", (f"a/{n}.jpg", photo)) for n in range(3)],
        ).json()
        client.post(f"/api/v1/batches/{created['id']}/cancel", headers=headers)
    finally:
        ctx.stopping.clear()
    download = client.get(created["results_url"], headers=headers)
    with zipfile.ZipFile(io.BytesIO(download.content)) as zf:
        assert zf.namelist() == ["NOT-INCLUDED.txt"]
        lines = zf.read("NOT-INCLUDED.txt").decode().splitlines()
    assert lines[2:] == [
        f"- a/{n}.jpg: cancelled. The batch was cancelled before this item started. You were "
        "not charged for it."
        for n in range(3)
    ]


def test_results_zip_says_why_each_file_was_cancelled(client: TestClient, ctx: Context) -> None:
    """The operator suspended batch processing while the items waited: the note said, in
    Chinese, that the batch had been cancelled; it gives each cancellation's own reason."""
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 120)
    ctx.stopping.set()  # nothing starts before the suspension
    try:
        created = client.post(
            "/api/v1/batches",
            headers=headers,
            files=[("files", (f"a/{n}.jpg", photo)) for n in range(2)],
        ).json()
        with ctx.db.transaction() as session:
            moderation.set_service_status(
                session,
                Actor(None, "operator"),
                "batch",
                "suspended",
                "Back at noon.",
                "maintenance",
                now=ctx.now(),
            )
    finally:
        ctx.stopping.clear()
    chinese = client.get(created["results_url"], headers={**headers, "Accept-Language": "zh-CN"})
    with zipfile.ZipFile(io.BytesIO(chinese.content)) as zf:
        lines = zf.read("NOT-INCLUDED.txt").decode().splitlines()
    assert lines[2:] == [
        f"- a/{n}.jpg：已取消。该服务暂时停用：Back at noon. 未扣除积分，请稍后再试。"  # noqa: RUF001
        for n in range(2)
    ]


def test_time_left_follows_the_batch_pace(client: TestClient, ctx: Context) -> None:
    """A 500-item batch showed counts only; now the API and the page say how long is left,
    from the pace since the first item started: 2 items done in 300 s, 2 left, 300 s."""
    start = datetime.now(UTC)
    now = [start]
    ctx.clock = lambda: now[0]
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 96)
    ctx.stopping.set()  # the workers start nothing: this test runs the items itself
    try:
        created = client.post(
            "/api/v1/batches",
            headers=headers,
            files=[("files", (f"{n}.jpg", photo)) for n in range(4)],
        ).json()
        assert created["eta_seconds"] is None  # nothing done yet: no pace to go by
        for _ in range(2):
            claimed = worker.claim_next(ctx)
            assert claimed is not None
            now[0] += timedelta(seconds=100)
            worker.run_claimed(ctx, claimed)
        now[0] = start + timedelta(seconds=300)
        batch = client.get(f"/api/v1/batches/{created['id']}", headers=headers).json()
        assert batch["counts"]["succeeded"] == 2 and batch["eta_seconds"] == 300

        login(client, "ada@example.com")
        page = client.get(f"/batches/{created['id']}").text
        eta = re.search(r'<p id="batch-eta"([^>]*)>([^<]*)</p>', page)
        assert eta is not None and "hidden" not in eta[1]
        assert eta[2] == "About 5 minutes left."
        client.post(f"/api/v1/batches/{created['id']}/cancel", headers=headers)
        done = client.get(f"/api/v1/batches/{created['id']}", headers=headers).json()
        assert done["status"] == "cancelled" and done["eta_seconds"] is None
    finally:
        ctx.stopping.clear()


SHORT = "This needs 5 credits and your balance is 2."


def test_a_batch_the_balance_cannot_pay_is_refused_before_its_files_are_read(
    client: TestClient, ctx: Context
) -> None:
    """A batch larger than the balance was refused only after every file was received and
    decoded and half of them were stored. Now loose files are counted as their parts start
    (the rest of the body is never read: here it is not even a valid form) and a ZIP's images
    from its central directory before any member is decompressed (here the images would
    exceed the pixel limit once decoded): 402 with the batch's sentence, on the API and the
    page, and nothing held or stored."""
    user = make_user(ctx, credits=2)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 120)
    boundary = "batchboundary"
    files = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="{n}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'.encode()
        + photo
        + b"\r\n"
        for n in range(3)
    ]
    # After the third file, more fields than a form may have: reading that far is a 400.
    unreadable = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{n}"\r\n\r\nx\r\n'.encode()
        for n in range(60)
    ]
    refused = client.post(
        "/api/v1/batches",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=b"".join(files + unreadable) + f"--{boundary}--\r\n".encode(),
    )
    assert refused.status_code == 402, refused.text  # was 400 invalid_upload: all was read
    assert refused.json()["error"]["message"] == (
        "This needs 3 credits and your balance is 2. Buy more credits on the Credits page "
        "(http://testserver/credits) or wait for your free allowance."
    )

    ctx.settings.batch_max_pixels = 3 * 120 * 120  # five decoded images would be 413
    archive = make_zip({f"shop/{n}.jpg": photo for n in range(5)} | {"notes.txt": b"hi"})
    zipped = client.post("/api/v1/batches", headers=headers, files={"archive": ("a.zip", archive)})
    assert zipped.status_code == 402, zipped.text  # was 413: every member was decoded first
    assert zipped.json()["error"]["message"].startswith(SHORT)

    login(client, "ada@example.com")
    token = form_token(client.get("/batches").text)
    page = client.post("/batches", data={"csrf_token": token}, files={"files": ("a.zip", archive)})
    assert page.status_code == 402
    assert SHORT in text_of(page.text)
    ledger = audit(ctx, user.id)
    assert ledger["held"] == 0 and ledger["available"] == 2 and not ledger["jobs"]
    assert not list(ctx.settings.data_dir.rglob("originals/*"))


def test_batch_page_lists_one_page_of_files_and_the_failed_ones(
    client: TestClient, ctx: Context
) -> None:
    """A 5,000-file batch's page listed every file. Now one page of them (2 here, 100 by
    default), the files skipped at upload after the last page, and a list of the failed
    files alone, each page reading only its own rows."""
    ctx.settings.batch_page_items = 2
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 96)
    files = [("files", (f"{n}.jpg", photo)) for n in range(4)]
    files += [("files", ("flat.png", plain_image(side=64))), ("files", ("notes.txt", b"hi"))]
    created = client.post("/api/v1/batches", headers=headers, files=files).json()
    wait_for_batch(client, created["id"], headers)
    login(client, "ada@example.com")
    url = f"/batches/{created['id']}"

    def listed(html: str) -> list[str]:
        return re.findall(r'<tr data-job-id="[0-9a-f]+"[^>]*>\s*<td[^>]*>([^<]+)</td>', html)

    first = client.get(url).text
    assert listed(first) == ["0.jpg", "1.jpg"]
    assert "Files 1 to 2 of 5, page 1 of 3" in text_of(first)
    assert f'href="{url}?page=2"' in first and "notes.txt" not in first
    last = client.get(url, params={"page": 3}).text
    assert listed(last) == ["flat.png"] and "notes.txt" in last
    assert f'href="{url}?page=2"' in last and "page=4" not in last
    assert listed(client.get(url, params={"page": 99}).text) == ["flat.png"]
    failed = client.get(url, params={"show": "failed"}).text
    assert listed(failed) == ["flat.png"] and "notes.txt" in failed
    assert 'aria-current="page">Failed (<span id="batch-failed-count">1</span>)' in failed
    # batch.js refreshes this page's files, not all of them
    assert f'data-items-url="/api/v1/batches/{created["id"]}/items?status=failed' in failed


def test_events_send_the_counts_and_only_the_items_that_changed(
    client: TestClient, ctx: Context
) -> None:
    """The stream read every item twice a second and began with an `item` event for each of
    them (5,000 on a large batch) although the page had just shown them. Now it sends the
    items started or finished since `since` (the page's own reading) and then only those
    whose status changed: here one item run, then three cancelled."""
    user = make_user(ctx, credits=10)
    headers = {"X-Api-Key": make_api_key(ctx, user)}
    photo = small_photo(photo_paths(1)[0], 96)
    ctx.stopping.set()  # the workers start nothing: this test runs and cancels the items
    try:
        created = client.post(
            "/api/v1/batches",
            headers=headers,
            files=[("files", (f"{n}.jpg", photo)) for n in range(4)],
        ).json()
        since = ctx.now()

        def meanwhile() -> None:
            time.sleep(1.2)  # two reads without any change
            claimed = worker.claim_next(ctx)
            assert claimed is not None
            worker.run_claimed(ctx, claimed)
            time.sleep(1.2)
            with ctx.db.transaction() as session:
                batches.cancel(session, user, created["id"], ctx.now())

        helper = threading.Thread(target=meanwhile)
        helper.start()
        events: list[tuple[str, dict[str, Any]]] = []
        with client.stream(
            "GET", created["events_url"], headers=headers, params={"since": since.isoformat()}
        ) as response:
            kind = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))
        helper.join()
    finally:
        ctx.stopping.clear()
    assert events[0][0] == "progress" and events[0][1]["counts"]["queued"] == 4
    items = [(d["relative_path"], d["status"]) for k, d in events if k == "item"]
    ran = [path for path, status in items if status == "succeeded"]
    assert len(ran) == 1
    assert sorted(items) == sorted(
        [*((path, "running") for path, status in items if status == "running")]
        + [(ran[0], "succeeded")]
        + [(f"{n}.jpg", "cancelled") for n in range(4) if f"{n}.jpg" != ran[0]]
    )
    assert events[-1][0] == "done" and events[-1][1]["counts"]["cancelled"] == 3
