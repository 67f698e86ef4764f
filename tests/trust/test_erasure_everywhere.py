"""Erasure on request, end to end: a full account history made through the real app (sign-up,
confirmation, jobs, a batch, a sandbox purchase, an API key, a promo code, a password reset
email, an export), then the account deleted by its owner or by an administrator, then every
table of the database and every file of the data folder searched for the person's address,
network address, file names and image bytes."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import inspect, text

from removeany.accounts import repository as accounts_repo
from removeany.accounts import service as accounts
from removeany.app import create_app
from removeany.billing import service as billing
from removeany.context import Context
from removeany.credits import free
from removeany.jobs.models import Job
from removeany.maintenance import run_sweeps
from tests.conftest import TestClock
from tests.helpers import wait_for_batch
from tests.trust.conftest import PASSWORD, link_in, token_of

EMAIL = "wilhelmina.zorn@example.org"
IP = "203.0.113.77"
FILE_STEM = "wilhelmina_passport_scan"
BATCH_NAME = "zorn_family_holiday"
ADMIN = "operator@example.org"
ADMIN_IP = "198.51.100.5"


def noisy_photo(seed: int, fmt: str = "JPEG") -> bytes:
    """A photo whose bytes are its own: a subject on a plain ground, with noise."""
    rng = np.random.default_rng(seed)
    pixels = np.full((96, 128, 3), 235, np.uint8)
    pixels[24:72, 40:88] = (30, 90, 200)
    pixels = np.clip(pixels.astype(int) + rng.integers(-12, 12, pixels.shape), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, fmt, quality=92)
    return buffer.getvalue()


def database_dump(ctx: Context) -> str:
    """Every row of every table the database has (not only those our models name)."""
    lines = []
    with ctx.db.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                lines.append(f"{table}: {tuple(row)!r}")
    return "\n".join(lines)


def data_files(ctx: Context) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in ctx.settings.data_dir.rglob("*") if p.is_file()}


def database_files(ctx: Context) -> dict[Path, bytes]:
    """SQLite's own files, wherever they are: what a row held before it was deleted or
    changed may linger in free pages and in the write-ahead log."""
    if ctx.db.engine.url.get_backend_name() != "sqlite":
        return {}
    # Closing a file this process opened on the database drops every POSIX lock the process
    # holds on it, the pool's connections' included: another process (the CLI's) would then
    # take itself for the only one and rebuild the WAL index under them ("database disk image
    # is malformed" at their next query). No connection stays open while the files are read.
    ctx.db.engine.dispose()
    database = Path(str(ctx.db.engine.url.database))
    return {p: p.read_bytes() for p in database.parent.glob(database.name + "*")}


def make_history(ctx: Context, client: TestClient) -> dict[str, bytes]:
    """Everything a customer does, through the app's own routes; returns the image bytes
    uploaded and received."""
    r = client.post(
        "/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD, "accept_terms": True}
    )
    assert r.status_code == 202, r.text
    r = client.post("/api/v1/auth/verify", json={"token": token_of(link_in(ctx, EMAIL, "/verify"))})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
    r = client.post("/api/v1/api-keys", json={"name": f"{FILE_STEM} laptop"}, headers=csrf)
    assert r.status_code == 201, r.text
    api = {"X-Api-Key": r.json()["key"]}

    images: dict[str, bytes] = {}
    upload = noisy_photo(1)
    r = client.post(
        "/api/v1/jobs",
        headers=api,
        files={
            "file": (f"{FILE_STEM}.jpg", upload, "image/jpeg"),
            "bg_image_file": ("beach.jpg", noisy_photo(99), "image/jpeg"),
        },
        data={"wait": "true", "format": "png"},
    )
    assert r.status_code == 202 and r.json()["status"] == "succeeded", r.text
    job_id = r.json()["id"]
    images["upload"] = upload
    with ctx.db.transaction() as s:  # the background photo is kept with the job's options
        background = s.get(Job, job_id).options["bg_image_jpg"]  # type: ignore[union-attr]
    images["background photo"] = background[len(background) // 2 :][:48].encode()
    images["result"] = client.get(f"/api/v1/jobs/{job_id}/result", headers=api).content

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        for n in range(2):
            images[f"batch{n}"] = noisy_photo(10 + n)
            z.writestr(f"{BATCH_NAME}/{FILE_STEM}_{n}.jpg", images[f"batch{n}"])
        z.writestr(f"{BATCH_NAME}/{FILE_STEM}_notes.txt", b"not an image")
    r = client.post(
        "/api/v1/batches",
        headers=api,
        files={"archive": (f"{BATCH_NAME}.zip", archive.getvalue(), "application/zip")},
    )
    assert r.status_code == 202, r.text
    batch = wait_for_batch(client, r.json()["id"], api)
    assert batch["counts"]["succeeded"] == 2, batch
    assert client.get(f"/api/v1/batches/{batch['id']}/results", headers=api).status_code == 200

    with ctx.db.transaction() as s:
        pack = billing.packs(s)[0].slug
        free.create_promo(
            s,
            "WELCOME-ZORN",
            credits=5,
            max_uses=10,
            credit_days=30,
            redeem_by=None,
            now=ctx.now(),
            admin_id=None,
        )
    r = client.post("/api/v1/billing/checkout", json={"pack": pack}, headers=csrf)
    assert r.status_code == 201, r.text
    r = client.post(
        f"/billing/sandbox/{r.json()['id']}/pay", data={"csrf_token": csrf["X-CSRF-Token"]}
    )
    assert r.status_code == 200 and "paid=" in str(r.url), r.text
    r = client.post("/api/v1/credits/redeem", json={"code": "WELCOME-ZORN"}, headers=csrf)
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/password-reset", json={"email": EMAIL})
    assert r.status_code == 202, r.text
    r = client.get("/api/v1/account/export", headers=api)
    assert r.status_code == 200
    return images


NEEDLES = (("email", EMAIL), ("ip", IP), ("file name", FILE_STEM), ("batch name", BATCH_NAME))


def traces(ctx: Context, images: dict[str, bytes]) -> list[str]:
    """Where anything of the person is still held: table rows and files that name them, and
    the database's files where they hold what no row does any more."""
    found = []
    dump = database_dump(ctx)
    for what, needle in NEEDLES:
        found += [f"{what} in {line[:300]}" for line in dump.splitlines() if needle in line]
    pieces = {name: data[len(data) // 2 : len(data) // 2 + 48] for name, data in images.items()}
    stored = data_files(ctx) | database_files(ctx)
    for path, data in stored.items():
        lowered = data.lower()
        for what, needle in NEEDLES:
            if needle.encode() in lowered and (
                path not in database_files(ctx) or needle not in dump
            ):
                found.append(f"{what} in file {path}")
        for name, piece in pieces.items():
            if piece in data:
                found.append(f"{name} image bytes in file {path}")
    for name, piece in pieces.items():
        if piece.isascii() and piece.decode() in dump:
            found.append(f"{name} in the database")
    return found


@pytest.mark.parametrize("by", ["owner", "admin", "cli"])
def test_erasure_leaves_nothing_of_the_person(ctx: Context, clock: TestClock, by: str) -> None:
    ctx.clock = clock
    with ctx.db.transaction() as s:
        admin = accounts.create_user(s, ADMIN, PASSWORD, now=ctx.now(), verified=True)
        admin.is_admin = True
    with TestClient(create_app(ctx), client=(IP, 40000)) as client:
        images = make_history(ctx, client)
        before = traces(ctx, images)
        # The test sees what it looks for before the erasure.
        assert any(t.startswith("email in outgoing_mail") for t in before), before
        assert any("upload image bytes" in t for t in before), before
        assert any(t.startswith("ip in web_sessions") for t in before), before
        assert any(t.startswith("file name in jobs") for t in before), before
        with ctx.db.transaction() as s:
            user_id = accounts_repo.user_by_email(s, EMAIL).id  # type: ignore[union-attr]
        if by == "owner":
            r = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
            r = client.post(
                "/api/v1/account/delete",
                json={"current_password": PASSWORD},
                headers={"X-CSRF-Token": r.json()["csrf_token"]},
            )
            assert r.status_code == 200, r.text
    if by == "admin":
        with TestClient(create_app(ctx), client=(ADMIN_IP, 40000)) as operator:
            r = operator.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
            r = operator.post(
                f"/api/v1/admin/users/{user_id}/delete",
                json={"reason": "asked by letter to erase the account"},
                headers={"X-CSRF-Token": r.json()["csrf_token"]},
            )
            assert r.status_code == 200, r.text
    if by == "cli":
        s = ctx.settings
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "REMOVEANY_DATA_DIR": str(s.data_dir),
            "REMOVEANY_DATABASE_URL": ctx.db.url,
            "REMOVEANY_SECRET_KEY": ctx.secret_key,
            "REMOVEANY_MODEL_DIR": str(s.model_dir),
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "removeany",
                "admin",
                "delete",
                EMAIL,
                "-r",
                "by letter",
                "--yes",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    left = traces(ctx, images)
    # Throttle counters are kept per network address, not per person: they outlive the
    # account until their window has passed, then the sweep forgets them. The owner is told
    # their account is gone: that email, to their address, is kept as long as sent ones are.
    goodbye = "Your RemoveAny account was deleted"
    kept = [
        t
        for t in left
        if not t.startswith("ip in rate_counters")
        and not (by == "owner" and t.startswith("email in outgoing_mail") and goodbye in t)
    ]
    if by == "owner":
        (notice,) = [
            p for p in ctx.settings.outbox_dir.glob("*.eml") if EMAIL.encode() in p.read_bytes()
        ]
        assert goodbye.encode() in notice.read_bytes()
        kept = [t for t in kept if t != f"email in file {notice}"]
    assert kept == [], "\n".join(kept)
    clock.now += timedelta(days=2)
    run_sweeps(ctx)
    left = traces(ctx, images)
    assert left == [], "\n".join(left)


def test_retention_sweep_leaves_no_mail_sessions_or_files(ctx: Context, clock: TestClock) -> None:
    """Without any erasure, the schedule alone: once every retention period has passed the
    data folder holds no email, link or image of the person, and expired sign-ins are gone."""
    ctx.clock = clock
    with TestClient(create_app(ctx), client=(IP, 40000)) as client:
        images = make_history(ctx, client)
    assert list(ctx.settings.outbox_dir.glob("*.eml"))
    clock.now += timedelta(days=ctx.settings.session_days + 2)
    run_sweeps(ctx)
    left = [
        t
        for t in traces(ctx, images)
        # the account itself is kept while it exists, with what it needs to work, and the
        # records of its jobs and batches (not their files)
        if not re.match(r"(email|ip) in (users|terms_acceptances|known_devices|signup_grants)", t)
        and not t.startswith("file name in api_keys")
        and not re.match(r"(file|batch) name in (jobs|batches)", t)
    ]
    assert left == [], "\n".join(left)


def test_export_holds_everything_held_about_the_person_and_nothing_about_others(
    ctx: Context,
) -> None:
    with TestClient(create_app(ctx), client=("198.51.100.23", 40000)) as other:
        r = other.post(
            "/api/v1/auth/register",
            json={"email": "eve@example.com", "password": PASSWORD, "accept_terms": True},
        )
        assert r.status_code == 202
    with TestClient(create_app(ctx), client=(IP, 40000)) as client:
        images = make_history(ctx, client)
        r = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert r.status_code == 200
        export = client.get("/api/v1/account/export")
    assert export.status_code == 200 and export.headers["cache-control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    record = json.loads(archive.read("account.json"))
    assert record["account"]["email"] == EMAIL
    assert [b["name"] for b in record["batches"]] == [f"{BATCH_NAME}.zip"]
    assert record["batches"][0]["rejected_files"][0]["path"].endswith("_notes.txt")
    assert sorted(j["path_in_batch"] or "" for j in record["jobs"]) == [
        "",
        f"{BATCH_NAME}/{FILE_STEM}_0.jpg",
        f"{BATCH_NAME}/{FILE_STEM}_1.jpg",
    ]
    ((order,),) = [record["orders"]]
    assert order["status"] == "paid" and order["provider"] == "sandbox"
    assert [p["code"] for p in record["promo_codes_redeemed"]] == ["WELCOME-ZORN"]
    assert record["signup_grant"][0]["ip"] == IP
    subjects = [m["subject"] for m in record["emails"]]
    assert any("reset" in s.lower() for s in subjects), subjects
    assert {m["to"] for m in record["emails"]} == {EMAIL}
    assert {s["ip"] for s in record["sessions"]} == {IP}
    assert [k["name"] for k in record["api_keys"]] == [f"{FILE_STEM} laptop"]
    stored = {archive.read(n) for n in archive.namelist() if n.startswith("images/")}
    assert images["upload"] in stored and images["batch0"] in stored
    # Nothing of anyone else: not their address, network, or the email written to them.
    raw = archive.read("account.json").decode()
    assert "eve@example.com" not in raw and "198.51.100.23" not in raw
