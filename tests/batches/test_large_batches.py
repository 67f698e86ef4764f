"""What a shop's batch of hundreds of photos needs, scaled down to a few small photos: uploads
kept on disk rather than in memory, and the limits' errors in the API's shape."""

from __future__ import annotations

import io
import random
import tracemalloc

from fastapi.testclient import TestClient
from PIL import Image

from removeany.context import Context
from tests.batches._images import photo_paths, small_photo
from tests.helpers import make_api_key, make_user
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
