"""Prices, idempotent submissions and the charge a job was accepted at, over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from removeany.accounts import repository as accounts_repo
from removeany.context import Context
from tests.conftest import eval_image
from tests.helpers import make_api_key, make_user


def _admin_key(ctx: Context) -> str:
    admin = make_user(ctx, "root@example.com", credits=0)
    with ctx.db.transaction() as s:
        row = accounts_repo.user_by_id(s, admin.id)
        assert row is not None
        row.is_admin = True
    return make_api_key(ctx, admin)


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
