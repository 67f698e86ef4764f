"""Prices, idempotent submissions and the charge a job was accepted at, over HTTP."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image

from removeany.accounts import repository as accounts_repo
from removeany.catalog.prices import tier_for
from removeany.context import Context
from removeany.engine.compose import most_pixels, parse_options
from tests.conftest import eval_image
from tests.helpers import make_api_key, make_user


def _admin_key(ctx: Context) -> str:
    admin = make_user(ctx, "root@example.com", credits=0)
    with ctx.db.transaction() as s:
        row = accounts_repo.user_by_id(s, admin.id)
        assert row is not None
        row.is_admin = True
    return make_api_key(ctx, admin)


def _price_tiers_1_3_5(client: TestClient, ctx: Context) -> None:
    """Background removal priced 1 (preview), 3 (full) and 5 (50MP) by an admin, so that
    every tier costs something different."""
    admin = _admin_key(ctx)
    for tier, credits in (("preview", 1), ("full", 3), ("50MP", 5)):
        changed = client.put(
            "/api/v1/admin/prices",
            headers={"X-Api-Key": admin},
            json={"service": "remove_background", "tier": tier, "credits": credits},
        )
        assert changed.status_code == 200


def test_job_keeps_the_price_it_was_accepted_at(client: TestClient, ctx: Context) -> None:
    user_key = make_api_key(ctx, make_user(ctx, credits=10))
    admin = _admin_key(ctx)
    assert (
        client.put(
            "/api/v1/admin/prices",
            headers={"X-Api-Key": user_key},
            json={"service": "remove_background", "tier": "full", "credits": 4},
        ).status_code
        == 403
    )
    changed = client.put(
        "/api/v1/admin/prices",
        headers={"X-Api-Key": admin},
        json={"service": "remove_background", "tier": "full", "credits": 4},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    photo = eval_image("object", "alphamatting_GT06").read_bytes()
    response = client.post(
        "/v1.0/removebg", headers={"X-Api-Key": user_key}, files={"image_file": ("p.png", photo)}
    )
    assert response.headers["X-Credits-Charged"] == "4"
    jobs = client.get("/api/v1/jobs", headers={"X-Api-Key": user_key}).json()
    assert jobs[0]["cost"] == jobs[0]["charged"] == 4
    listed = {(p["tier"], p["credits"]) for p in client.get("/api/v1/prices").json()}
    assert ("full", 4) in listed


def test_a_job_is_priced_at_the_tier_of_its_real_size(client: TestClient, ctx: Context) -> None:
    """An 800x618 photo asked for at 50MP comes out at 0.49 MP: it is a full-size result and
    costs the full price; the same photo at 400x309 (0.12 MP) asked for at full size comes
    out no bigger than a preview and costs the preview price. The API's cost is the charge."""
    _price_tiers_1_3_5(client, ctx)
    key = make_api_key(ctx, make_user(ctx, credits=20))
    path = eval_image("object", "alphamatting_GT07")
    photo = path.read_bytes()
    with Image.open(path) as image:
        assert image.size == (800, 618)
        buffer = io.BytesIO()
        image.resize((400, 309)).save(buffer, "PNG")
    small = buffer.getvalue()

    def run(data: bytes, size: str, **options: str) -> tuple[int, int]:
        job = client.post(
            "/api/v1/jobs",
            headers={"X-Api-Key": key},
            data={"wait": "true", "size": size, **options},
            files={"file": ("p.png", data)},
        ).json()
        assert job["status"] == "succeeded", job
        return job["cost"], job["charged"]

    assert run(photo, "50MP") == (3, 3)
    assert run(small, "full") == (1, 1)
    removebg = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": key},
        data={"size": "50MP"},
        files={"image_file": ("p.png", photo)},
    )
    assert removebg.status_code == 200 and removebg.headers["X-Credits-Charged"] == "3"
    assert client.get("/api/v1/credits", headers={"X-Api-Key": key}).json()["available"] == 13


def _resized(name: str, width: int) -> bytes:
    with Image.open(eval_image("object", name)) as image:
        height = round(image.height * width / image.width)
        buffer = io.BytesIO()
        image.convert("RGB").resize((width, height)).save(buffer, "JPEG", quality=92)
        return buffer.getvalue()


def test_a_cropped_job_is_charged_at_the_tier_of_the_result_it_made(
    client: TestClient, ctx: Context
) -> None:
    """The price list (home page, README, OpenAPI) prices a result by its size: preview up to
    0.25 MP, full up to 25 MP, 50MP above. With `crop` the price came from the size's name
    alone: a 21 MP photo at size=full with 500 px margins made a 29 MP result charged as a
    full one (X-Credits-Charged: 1 at the seed prices, where the list says 2), and a 0.9 MP
    photo at size=50MP made a 0.8 MP result charged the 50MP price. A cropped job now holds
    the price of the largest result it can make (the photo with its margins) and is charged
    the tier of the result it made, the rest of the hold going back; without crop the hold
    is the result's exact price (a full-resolution result over 25 MP is a 50MP one)."""
    _price_tiers_1_3_5(client, ctx)
    key = make_api_key(ctx, make_user(ctx, credits=40))
    headers = {"X-Api-Key": key}

    def available() -> int:
        return int(client.get("/api/v1/credits", headers=headers).json()["available"])

    # A 5800x3603 photo (20.9 MP), its subject nearly the whole frame, 500 px a side.
    big = _resized("alphamatting_GT01", 5800)
    response = client.post(
        "/v1.0/removebg",
        headers=headers,
        data={"size": "full", "crop": "true", "crop_margin": "500px", "format": "jpg"},
        files={"image_file": ("big.jpg", big)},
    )
    assert response.status_code == 200, response.text
    pixels = int(response.headers["X-Width"]) * int(response.headers["X-Height"])
    assert 25_000_000 < pixels <= 50_000_000, pixels
    assert response.headers["X-Credits-Charged"] == "5"
    assert available() == 35

    def run(data: bytes, **options: str) -> dict[str, int]:
        job = client.post(
            "/api/v1/jobs",
            headers=headers,
            data={"wait": "true", "crop": "true", **options},
            files={"file": ("p.jpg", data)},
        ).json()
        assert job["status"] == "succeeded", job
        return job  # type: ignore[no-any-return]

    # The reverse: a small photo asked for at 50MP comes out a full-size result.
    job = run(_resized("alphamatting_GT01", 1200), size="50MP")
    assert job["result_width"] * job["result_height"] < 25_000_000
    assert (job["cost"], job["charged"]) == (3, 3)
    assert available() == 32

    # A 640x426 photo (0.27 MP: full) whose subject is narrower: the crop is preview-sized.
    # The full price is held, the preview price charged, and the rest goes back.
    job = run(_resized("alphamatting_GT25", 640), size="full", format="png")
    assert job["result_width"] * job["result_height"] <= 250_000, job
    assert (job["cost"], job["charged"]) == (1, 1)
    credits = client.get("/api/v1/credits", headers=headers).json()
    assert credits["available"] == 31 and credits["held"] == 0
    mine = [(e["kind"], e["amount"]) for e in credits["entries"] if e["job_id"] == job["id"]]
    assert sorted(mine) == [("capture", 0), ("release", 2), ("reserve", -3)], mine


def test_idempotent_job_submission(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=10))
    photo = eval_image("object", "alphamatting_GT07").read_bytes()
    headers = {"X-Api-Key": key, "Idempotency-Key": "upload-7"}
    first = client.post(
        "/api/v1/jobs", headers=headers, data={"wait": "true"}, files={"file": ("a.png", photo)}
    ).json()
    again = client.post(
        "/api/v1/jobs", headers=headers, data={"wait": "true"}, files={"file": ("a.png", photo)}
    ).json()
    assert first["id"] == again["id"] and again["charged"] == 1
    different = client.post(
        "/api/v1/jobs", headers=headers, data={"size": "preview"}, files={"file": ("a.png", photo)}
    )
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_key_reused"
    credits = client.get("/api/v1/credits", headers={"X-Api-Key": key}).json()
    assert credits["available"] == 9
    history = credits["entries"]
    assert history[0]["job_id"] == first["id"] and history[0]["lot_source"] == "admin"


def test_promo_redeem_over_http(client: TestClient, ctx: Context) -> None:
    admin = _admin_key(ctx)
    created = client.post(
        "/api/v1/admin/promo-codes",
        headers={"X-Api-Key": admin},
        json={"code": "WELCOME", "credits": 7, "max_uses": 1},
    )
    assert created.status_code == 201
    key = make_api_key(ctx, make_user(ctx, credits=0))
    lot = client.post(
        "/api/v1/credits/redeem", headers={"X-Api-Key": key}, json={"code": "welcome"}
    )
    assert lot.status_code == 201 and lot.json()["source"] == "promo"
    missing = client.post(
        "/api/v1/credits/redeem", headers={"X-Api-Key": key}, json={"code": "nope"}
    )
    assert missing.status_code == 404


def test_an_admin_closes_a_leaked_promo_code(client: TestClient, ctx: Context) -> None:
    admin = _admin_key(ctx)
    created = client.post(
        "/api/v1/admin/promo-codes",
        headers={"X-Api-Key": admin},
        json={"code": "LEAKED", "credits": 5, "max_uses": 1000},
    )
    assert created.status_code == 201
    first = make_api_key(ctx, make_user(ctx, "first@example.com", credits=0))
    second = make_api_key(ctx, make_user(ctx, "second@example.com", credits=0))
    assert (
        client.post(
            "/api/v1/credits/redeem", headers={"X-Api-Key": first}, json={"code": "leaked"}
        ).status_code
        == 201
    )
    refused = client.post("/api/v1/admin/promo-codes/leaked/close", headers={"X-Api-Key": second})
    assert refused.status_code == 403
    closed = client.post("/api/v1/admin/promo-codes/leaked/close", headers={"X-Api-Key": admin})
    assert closed.status_code == 200 and closed.json()["used"] == 1
    late = client.post(
        "/api/v1/credits/redeem", headers={"X-Api-Key": second}, json={"code": "LEAKED"}
    )
    assert late.status_code == 410 and late.json()["error"]["code"] == "promo_expired"
    assert client.get("/api/v1/credits", headers={"X-Api-Key": first}).json()["available"] == 5
    assert client.get("/api/v1/credits", headers={"X-Api-Key": second}).json()["available"] == 0
    unknown = client.post("/api/v1/admin/promo-codes/nope/close", headers={"X-Api-Key": admin})
    assert unknown.status_code == 404


def test_a_cropped_job_holds_the_price_of_the_largest_result_it_can_make() -> None:
    """The hold's bound: the whole photo with its margins, a percentage of the photo stopping
    at 500 px a side, fitted to the size's budget; exact without crop."""
    half = parse_options(crop=True, crop_margin="50%", size="full")
    assert most_pixels(7600, 4722, half) == 8600 * 5722  # 49 MP: a 50MP result at most
    assert tier_for("full", most_pixels(7600, 4722, half)) == "50MP"
    assert most_pixels(400, 300, half) == 800 * 600
    assert most_pixels(400, 300, parse_options(crop=True, crop_margin="10px 20px")) == 440 * 320
    assert most_pixels(7600, 4722, parse_options(size="full")) == 7600 * 4722
    assert tier_for("full", 7600 * 4722) == "50MP"  # full resolution over 25 MP
    preview = parse_options(crop=True, crop_margin="500px", size="preview")
    assert most_pixels(7600, 4722, preview) <= 250_000
    assert tier_for("50MP", 1200 * 746) == "full"
