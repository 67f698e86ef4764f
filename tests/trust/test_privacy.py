"""Item 5: files deleted after the retention period and on request, no EXIF/GPS in results,
data export, account deletion that keeps an anonymised ledger."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from removeany.accounts.models import ApiKey, User, WebSession
from removeany.batches.models import Batch
from removeany.context import Context
from removeany.credits import free
from removeany.credits.models import CreditEntry, SignupGrant
from removeany.jobs.models import Job
from removeany.legal import service as legal
from removeany.privacy.service import run_retention
from tests.conftest import TestClock
from tests.helpers import make_api_key, make_user
from tests.trust.conftest import PASSWORD, login

GRANT = {"credits": 10, "days": 30, "per_ip_per_day": 3}


def photo(*, gps: bool = False, fmt: str = "JPEG") -> bytes:
    image = Image.new("RGB", (64, 48), (240, 240, 240))
    for x in range(20, 44):
        for y in range(12, 36):
            image.putpixel((x, y), (20, 90, 200))
    exif = Image.Exif()
    if gps:
        exif[0x010F] = "SpyCam"  # Make
        exif[0x0132] = "2026:01:01 12:00:00"  # DateTime
        gps_ifd = exif.get_ifd(0x8825)
        gps_ifd[1] = "N"
        gps_ifd[2] = (48.0, 51.0, 29.0)
        gps_ifd[3] = "E"
        gps_ifd[4] = (2.0, 17.0, 40.0)
    buffer = io.BytesIO()
    image.save(buffer, fmt, exif=exif.tobytes() if gps else b"")
    return buffer.getvalue()


def run_job(client: TestClient, key: str, data: bytes, **options: str) -> dict[str, object]:
    r = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": key},
        files={"file": ("p.jpg", data, "image/jpeg")},
        data={"wait": "true", **options},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "succeeded", job
    return job


def test_gps_tagged_upload_gives_a_result_without_exif(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx))
    upload = photo(gps=True)
    with Image.open(io.BytesIO(upload)) as original:
        assert original.getexif().get_ifd(0x8825)[2] == (48.0, 51.0, 29.0)  # really tagged
    for fmt in ("jpg", "png", "webp"):
        job = run_job(client, key, upload, format=fmt)
        result = client.get(f"/api/v1/jobs/{job['id']}/result", headers={"X-Api-Key": key})
        assert result.status_code == 200
        with Image.open(io.BytesIO(result.content)) as out:
            assert not out.getexif(), fmt
            assert "exif" not in out.info, fmt
        assert b"Exif\x00\x00" not in result.content and b"SpyCam" not in result.content


def test_exif_is_kept_only_when_asked(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx))
    upload = photo(gps=True)
    for fmt in ("jpg", "png", "webp"):
        job = run_job(client, key, upload, format=fmt, keep_metadata="true")
        result = client.get(f"/api/v1/jobs/{job['id']}/result", headers={"X-Api-Key": key})
        with Image.open(io.BytesIO(result.content)) as out:
            exif = out.getexif()
            assert exif.get(0x010F) == "SpyCam", fmt
            assert exif.get_ifd(0x8825)[2] == (48.0, 51.0, 29.0), fmt


def test_the_security_page_states_the_retention_and_metadata_kept_on_request(
    client: TestClient, ctx: Context
) -> None:
    """The "Your data" promise matches what the server does: the operator's retention period
    as set (1 hour, 0.5 hours; it said "1 hours" and "0 hours"), and EXIF kept when asked
    (test above; it said results never carry any)."""
    make_user(ctx)
    login(client, "ada@example.com", PASSWORD)
    said = {}
    for hours in (1.0, 0.5, 24.0):
        ctx.settings = ctx.settings.model_copy(update={"retention_hours": hours})
        page = client.get("/account/security")
        assert page.status_code == 200
        said[hours] = re.search(r"deleted automatically ([\d.]+ hours?) after", page.text)
        assert "metadata unless you ask to keep it" in page.text
    assert {h: m and m.group(1) for h, m in said.items()} == {
        1.0: "1 hour",
        0.5: "0.5 hours",
        24.0: "24 hours",
    }


def test_retention_sweep_and_delete_on_request(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    key = make_api_key(ctx, make_user(ctx))
    h = {"X-Api-Key": key}
    old = run_job(client, key, photo())
    clock.now += timedelta(hours=20)
    young = run_job(client, key, photo())
    files = client.get(f"/api/v1/jobs/{old['id']}/files", headers=h).json()
    assert files["deleted"] is False
    assert files["delete_after"].startswith("2026-01-02T12:00")
    clock.now += timedelta(hours=5)  # old: 25 h, young: 5 h
    assert run_retention(ctx) == 1
    assert run_retention(ctx) == 0
    with ctx.db.transaction() as s:
        gone = s.get(Job, old["id"])
        kept = s.get(Job, young["id"])
        assert gone is not None and kept is not None
        assert not ctx.storage.exists(gone.input_key)
        assert not ctx.storage.exists(gone.result_key or "")
        assert ctx.storage.exists(kept.input_key) and ctx.storage.exists(kept.result_key or "")
    r = client.get(f"/api/v1/jobs/{old['id']}/result", headers=h)
    assert r.status_code == 410 and r.json()["error"]["code"] == "file_deleted"
    assert client.get(f"/api/v1/jobs/{old['id']}/files", headers=h).json()["reason"] == (
        "retention"
    )
    # On request, right now.
    r = client.delete(f"/api/v1/jobs/{young['id']}/files", headers=h)
    assert r.status_code == 200 and r.json()["deleted"] is True and r.json()["reason"] == "user"
    assert client.get(f"/api/v1/jobs/{young['id']}/original", headers=h).status_code == 410
    other = make_api_key(ctx, make_user(ctx, "eve@example.com"))
    assert (
        client.delete(f"/api/v1/jobs/{young['id']}/files", headers={"X-Api-Key": other}).status_code
        == 404
    )


def test_export_is_a_zip_of_json_and_images(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx))
    job = run_job(client, key, photo())
    r = client.get("/api/v1/account/export", headers={"X-Api-Key": key})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    record = json.loads(archive.read("account.json"))
    assert record["account"]["email"] == "ada@example.com"
    assert record["terms_acceptances"][0]["version"] == legal.BUILTIN.version
    (exported,) = record["jobs"]
    assert exported["id"] == job["id"]
    names = set(archive.namelist())
    assert exported["files"]["original"] in names and exported["files"]["result"] in names
    assert all(k["prefix"].startswith("rak_") for k in record["api_keys"])
    raw = archive.read("account.json").decode()
    assert "$argon2" not in raw and "key_hash" not in raw and "totp_secret" not in raw


def test_account_deletion_erases_data_and_keeps_an_anonymous_ledger(
    client: TestClient, ctx: Context
) -> None:
    user = make_user(ctx, credits=5)
    key = make_api_key(ctx, user)
    job = run_job(client, key, photo())
    h = {"X-CSRF-Token": login(client, "ada@example.com").json()["csrf_token"]}
    wrong = client.post(
        "/api/v1/account/delete", json={"current_password": "not it at all"}, headers=h
    )
    assert wrong.status_code == 401
    r = client.post("/api/v1/account/delete", json={"current_password": PASSWORD}, headers=h)
    assert r.status_code == 200, r.text
    with ctx.db.transaction() as s:
        row = s.get(User, user.id)
        assert row is not None and row.status == "deleted"
        assert row.email == f"deleted-{user.id}@invalid" and row.password_hash == "!"
        assert s.scalars(select(WebSession).where(WebSession.user_id == user.id)).all() == []
        assert s.scalars(select(ApiKey).where(ApiKey.user_id == user.id)).all() == []
        stored = s.get(Job, job["id"])
        assert stored is not None and stored.input_name == ""
        assert not ctx.storage.exists(stored.input_key)
        entries = s.scalars(select(CreditEntry).where(CreditEntry.user_id == user.id)).all()
        assert {e.kind for e in entries} >= {"grant", "reserve", "revoke"}
        assert sum(e.amount for e in entries) == 0
    assert client.get("/api/v1/me", headers={"X-Api-Key": key}).status_code == 403
    assert login(client, "ada@example.com").status_code == 401
    again = client.post(
        "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert again.status_code == 202
    with ctx.db.transaction() as s:  # the address is free again: a new account has it
        fresh = s.scalars(select(User).where(User.email == "ada@example.com")).one()
        assert fresh.id != user.id and fresh.status == "active"


def test_account_deletion_forgets_file_names_and_the_signup_address(
    client: TestClient, ctx: Context
) -> None:
    """File names live on in a batch's name, its rejected files and the items' paths; the
    address and network in the signup grant. Erased, the mailbox still gets no second grant."""
    user = make_user(ctx, credits=5)
    key = make_api_key(ctx, user)
    job = run_job(client, key, photo())
    with ctx.db.transaction() as s:
        stored = s.get(Job, job["id"])
        assert stored is not None
        stored.relative_path = "scans/alice_smith_passport.jpg"
        s.add(
            Batch(
                id="b" * 32,
                user_id=user.id,
                name="alice_smith_passport_scans.zip",
                service="remove_background",
                total_items=1,
                total_bytes=1,
                total_pixels=1,
                rejected=[{"path": "alice_smith_id_back.heic", "code": "unsupported_format"}],
            )
        )
        free.grant_signup(s, user.id, "Ada@example.com", ip="203.0.113.9", now=ctx.now(), **GRANT)
    h = {"X-CSRF-Token": login(client, "ada@example.com").json()["csrf_token"]}
    r = client.post("/api/v1/account/delete", json={"current_password": PASSWORD}, headers=h)
    assert r.status_code == 200, r.text
    with ctx.db.transaction() as s:
        assert s.get(Job, job["id"]).relative_path is None  # type: ignore[union-attr]
        batch = s.get(Batch, "b" * 32)
        assert batch is not None and batch.name == "" and batch.rejected == []
        (grant,) = s.scalars(select(SignupGrant).where(SignupGrant.user_id == user.id)).all()
        assert grant.ip == "" and grant.email_key.startswith("sha256:")
    # the same mailbox, spelt another way, signing up again: no second grant
    again = make_user(ctx, "ada+new@example.com", credits=0)
    with ctx.db.transaction() as s:
        assert (
            free.grant_signup(s, again.id, "ada+new@example.com", ip="", now=ctx.now(), **GRANT)
            is None
        )
