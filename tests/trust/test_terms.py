"""Item 6: versioned bilingual terms, acceptance required before using the services,
publishing a new version notifies everyone and requires acceptance again."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from removeany.accounts import service as accounts
from removeany.context import Context
from removeany.legal.models import TermsAcceptance
from tests.helpers import make_api_key, make_user
from tests.trust.conftest import PASSWORD, mails
from tests.trust.test_moderation import make_admin


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 128, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def submit(client: TestClient, key: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/jobs", headers={"X-Api-Key": key}, files={"file": ("a.png", _png(), "image/png")}
    )


def _verified_key(ctx: Context, email: str) -> str:
    with ctx.db.transaction() as s:
        user = accounts.authenticate(s, email, PASSWORD)
        user.email_verified_at = ctx.now()
        return accounts.create_api_key(s, user, "k", now=ctx.now())[0]


def test_version_1_is_bilingual_and_readable(client: TestClient) -> None:
    current = client.get("/api/v1/legal/current").json()
    assert current["version"] == 1
    assert (
        "non-transferable" in current["terms_en"]
        or "cannot be transferred" in (current["terms_en"])
    )
    assert "不可转让" in current["terms_zh"] and "24 小时" in current["privacy_zh"]
    assert "{operator}" not in current["terms_en"]
    page = client.get("/legal/terms?lang=zh")
    assert page.status_code == 200 and "服务条款" in page.text and 'lang="zh-CN"' in page.text
    assert "Privacy Policy" in client.get("/legal/privacy").text


def test_jobs_need_the_current_terms(client: TestClient, ctx: Context) -> None:
    r = client.post(
        "/api/v1/auth/register", json={"email": "new@example.com", "password": PASSWORD}
    )
    assert r.status_code == 202
    key = _verified_key(ctx, "new@example.com")
    refused = submit(client, key)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "terms_not_accepted"
    stale = client.post("/api/v1/legal/accept", json={"version": 7}, headers={"X-Api-Key": key})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "terms_outdated"
    ok = client.post("/api/v1/legal/accept", json={"version": 1}, headers={"X-Api-Key": key})
    assert ok.status_code == 200 and ok.json()["accepted_current"] is True
    with ctx.db.transaction() as s:
        (row,) = s.scalars(select(TermsAcceptance)).all()
        assert row.version == 1 and row.ip == "testclient" and row.accepted_at is not None
    # No credits yet, but the terms are no longer the obstacle.
    assert submit(client, key).json()["error"]["code"] == "insufficient_credits"


def test_registration_can_accept_the_terms(client: TestClient, ctx: Context) -> None:
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "new@example.com", "password": PASSWORD, "accept_terms": True},
    )
    assert r.status_code == 202
    key = _verified_key(ctx, "new@example.com")
    acceptance = client.get("/api/v1/legal/acceptance", headers={"X-Api-Key": key}).json()
    assert acceptance["version"] == 1 and acceptance["accepted_current"] is True


def test_publishing_a_new_version_notifies_and_requires_acceptance(
    client: TestClient, ctx: Context
) -> None:
    admin = {"X-Api-Key": make_admin(ctx)}
    key = make_api_key(ctx, make_user(ctx, credits=5))
    assert submit(client, key).status_code == 202
    v1 = client.get("/api/v1/legal/current").json()
    body = {
        "summary": "Retention is now 12 hours.",
        "terms_en": v1["terms_en"] + "\n## 11. New\nA new clause.",
        "terms_zh": v1["terms_zh"] + "\n## 11. 新条款\n新增条款。",
        "privacy_en": v1["privacy_en"].replace("24 hours", "12 hours"),
        "privacy_zh": v1["privacy_zh"].replace("24 小时", "12 小时"),
    }
    user_key = {"X-Api-Key": key}
    assert client.post("/api/v1/admin/legal", json=body, headers=user_key).status_code == 403
    r = client.post("/api/v1/admin/legal", json=body, headers=admin)
    assert r.status_code == 201 and r.json()["version"] == 2
    notices = [m for m in mails(ctx, "ada@example.com") if "terms updated" in m["Subject"]]
    assert len(notices) == 1
    refused = submit(client, key)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "terms_not_accepted"
    assert "version 2" in refused.json()["error"]["message"]
    # Old versions stay readable.
    assert "24 hours" in client.get("/api/v1/legal/versions/1").json()["privacy_en"]
    assert "12 hours" in client.get("/api/v1/legal/current").json()["privacy_en"]
    # The banner on the site, for a signed-in user.
    login = client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    assert 'data-notice="terms"' in client.get("/app").text
    assert (
        client.post("/api/v1/legal/accept", json={"version": 2}, headers=user_key).status_code
        == 200
    )
    assert 'data-notice="terms"' not in client.get("/app").text
    assert submit(client, key).status_code == 202
    log = client.get("/api/v1/admin/audit", params={"q": "terms"}, headers=admin).json()
    assert log[0]["action"] == "terms.publish"
