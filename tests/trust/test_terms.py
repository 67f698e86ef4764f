"""Item 6: versioned bilingual terms, acceptance required before using the services,
publishing a new version notifies everyone and requires acceptance again."""

from __future__ import annotations

import io
import logging
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from removeany import cli
from removeany.accounts import service as accounts
from removeany.accounts.models import User
from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.credits import service as ledger
from removeany.infra.settings import Settings
from removeany.legal import service as legal
from removeany.legal import texts
from removeany.legal.install import install_builtin_terms
from removeany.legal.models import LegalVersion, TermsAcceptance
from removeany.mail.models import OutgoingMail
from removeany.moderation.audit import BUILT_IN, Actor
from removeany.moderation.models import AuditEntry
from tests.helpers import make_api_key, make_user
from tests.trust.conftest import PASSWORD, login, mails
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


def test_current_version_is_bilingual_and_readable(client: TestClient) -> None:
    current = client.get("/api/v1/legal/current").json()
    assert current["version"] == 2
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
    ok = client.post("/api/v1/legal/accept", json={"version": 2}, headers={"X-Api-Key": key})
    assert ok.status_code == 200 and ok.json()["accepted_current"] is True
    with ctx.db.transaction() as s:
        (row,) = s.scalars(select(TermsAcceptance)).all()
        assert row.version == 2 and row.ip == "testclient" and row.accepted_at is not None
    # No credits yet, but the terms are no longer the obstacle.
    assert submit(client, key).json()["error"]["code"] == "insufficient_credits"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_refusals_name_the_page_to_open_by_its_whole_address(settings: Settings) -> None:
    """An API client is not on the site: a refusal that sends its reader to a page (accept
    the terms, buy credits, the API's docs) names that page by the site's address
    (REMOVEANY_BASE_URL), which a script can show or log, not by a bare path."""
    site = "https://removeany.example.com"
    public = Settings(**{**settings.model_dump(), "base_url": site})
    ctx = build_context(public)
    try:
        with ctx.db.transaction() as s:  # verified, no credits, terms not accepted
            user = accounts.create_user(
                s, "ada@example.com", PASSWORD, now=ctx.now(), verified=True
            )
            key = accounts.create_api_key(s, user, "k", now=ctx.now())[0]
        photo = {"image_file": ("a.png", _png(), "image/png")}
        with TestClient(create_app(ctx), base_url="http://127.0.0.1:8000") as client:
            refused = submit(client, key).json()["error"]
            assert refused["code"] == "terms_not_accepted"
            assert f"open {site}/legal/accept on the website" in refused["message"]
            removebg = client.post("/v1.0/removebg", headers={"X-Api-Key": key}, files=photo)
            assert f"open {site}/legal/accept" in removebg.json()["errors"][0]["detail"]
            accepted = client.post(
                "/api/v1/legal/accept", json={"version": 2}, headers={"X-Api-Key": key}
            )
            assert accepted.status_code == 200
            broke = submit(client, key).json()["error"]
            assert broke["code"] == "insufficient_credits"
            assert f"the Credits page ({site}/credits)" in broke["message"]
            removebg = client.post("/v1.0/removebg", headers={"X-Api-Key": key}, files=photo)
            assert f"({site}/credits)" in removebg.json()["errors"][0]["detail"]
            missing = client.get("/api/v1/nothing-here").json()["error"]["message"]
            assert missing.endswith(f"listed at {site}/api/docs.")
    finally:
        ctx.close()


def test_registration_can_accept_the_terms(client: TestClient, ctx: Context) -> None:
    r = client.post(
        "/api/v1/auth/register",
        json={"email": "new@example.com", "password": PASSWORD, "accept_terms": True},
    )
    assert r.status_code == 202
    key = _verified_key(ctx, "new@example.com")
    acceptance = client.get("/api/v1/legal/acceptance", headers={"X-Api-Key": key}).json()
    assert acceptance["version"] == 2 and acceptance["accepted_current"] is True


def test_publishing_a_new_version_notifies_and_requires_acceptance(
    client: TestClient, ctx: Context
) -> None:
    admin = {"X-Api-Key": make_admin(ctx)}
    key = make_api_key(ctx, make_user(ctx, credits=5))
    assert submit(client, key).status_code == 202
    v2 = client.get("/api/v1/legal/current").json()
    body = {
        "summary": "Retention is now 12 hours.",
        "terms_en": v2["terms_en"] + "\n## 11. New\nA new clause.",
        "terms_zh": v2["terms_zh"] + "\n## 11. 新条款\n新增条款。",
        "privacy_en": v2["privacy_en"].replace("24 hours", "12 hours"),
        "privacy_zh": v2["privacy_zh"].replace("24 小时", "12 小时"),
    }
    user_key = {"X-Api-Key": key}
    assert client.post("/api/v1/admin/legal", json=body, headers=user_key).status_code == 403
    r = client.post("/api/v1/admin/legal", json=body, headers=admin)
    assert r.status_code == 201 and r.json()["version"] == 3
    notices = [m for m in mails(ctx, "ada@example.com") if "terms updated" in m["Subject"]]
    assert len(notices) == 1
    refused = submit(client, key)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "terms_not_accepted"
    assert "version 3" in refused.json()["error"]["message"]
    # Old versions stay readable.
    assert "24 hours" in client.get("/api/v1/legal/versions/2").json()["privacy_en"]
    assert "12 hours" in client.get("/api/v1/legal/current").json()["privacy_en"]
    # The banner on the site, for a signed-in user.
    login = client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    assert 'data-notice="terms"' in client.get("/app").text
    assert (
        client.post("/api/v1/legal/accept", json={"version": 3}, headers=user_key).status_code
        == 200
    )
    assert 'data-notice="terms"' not in client.get("/app").text
    assert submit(client, key).status_code == 202
    log = client.get("/api/v1/admin/audit", params={"q": "terms"}, headers=admin).json()
    assert log[0]["action"] == "terms.publish"


# --- the built-in version 2 ----------------------------------------------------------------


def _start(settings: Settings) -> None:
    """`serve` or an operator command starting on this database (after an upgrade)."""
    build_context(settings, migrate=True).close()


def person_who_accepted(
    ctx: Context, email: str, *, accepted: int, locale: str | None = None, ip: str | None = None
) -> str:
    """A confirmed account that accepted version `accepted` (from `ip`), whose emails are in
    `locale` (None: it never chose one), with 5 credits and an API key (returned)."""
    with ctx.db.transaction() as s:
        user = accounts.create_user(s, email, PASSWORD, now=ctx.now(), verified=True, locale=locale)
        s.add(TermsAcceptance(user_id=user.id, version=accepted, accepted_at=ctx.now(), ip=ip))
        ledger.grant(
            s,
            user.id,
            5,
            source="admin",
            now=ctx.now(),
            expires_at=ctx.now() + timedelta(days=30),
            reference="test",
        )
    return make_api_key(ctx, user)


def _user_of_release_1(ctx: Context, email: str = "ada@example.com") -> str:
    """An account as the release with only the built-in version 1 left it: version 1
    accepted (no `legal_versions` row: version 1 was served from the code), credits, a key."""
    return person_who_accepted(ctx, email, accepted=1, ip="192.0.2.7")


def _published(ctx: Context) -> list[tuple[int, str]]:
    with ctx.db.transaction() as s:
        rows = s.scalars(select(LegalVersion).order_by(LegalVersion.version)).all()
        return [(r.version, r.published_by) for r in rows]


def _terms_mails(ctx: Context) -> list[str]:
    with ctx.db.transaction() as s:
        rows = s.scalars(select(OutgoingMail).where(OutgoingMail.subject.contains("terms")))
        return [f"{m.to_address}: {m.subject}" for m in rows]


def test_a_new_installation_starts_at_the_built_in_version_2(
    client: TestClient, ctx: Context, settings: Settings
) -> None:
    _start(settings)
    _start(settings)  # every start runs it: the second changes nothing
    # No version 1: it never applied here, and it said less than this site does.
    assert _published(ctx) == [(2, BUILT_IN)]
    assert client.get("/api/v1/legal/versions/1").status_code == 404
    current = client.get("/api/v1/legal/current").json()
    assert current["version"] == 2 and current["summary"] == texts.VERSION_2_SUMMARY
    assert _terms_mails(ctx) == []  # nobody to tell
    with ctx.db.transaction() as s:
        assert s.scalar(select(AuditEntry.id)) is None
    page = client.get("/legal/terms")
    assert "?version=1" not in page.text and "?version=2" in page.text


def test_the_privacy_policy_says_what_is_kept_and_who_receives_it(client: TestClient) -> None:
    en = client.get("/api/v1/legal/current").json()
    for said in (
        "Stripe",  # card payments, when the operator enables them
        "mail server",
        "deleted 24 hours after the job was created",  # REMOVEANY_RETENTION_HOURS
        "24 hours after sending",  # MAIL_KEEP_SENT_HOURS: outgoing_mail rows, .eml files
        "7 days after we gave up",  # MAIL_KEEP_FAILED_DAYS
        "90 days after the last sign-in from them",  # KNOWN_DEVICE_DAYS
        "or 14 days pass",  # SESSION_DAYS
        "A previous email address: 14 days after the change",
        "orders",
        "audit log",
        "Job history",
        "When you delete your account",
    ):
        assert said in en["privacy_en"], said
    assert "the site makes no calls to other services" not in en["privacy_en"]
    assert "Stripe" in en["terms_en"] and "Stripe" in en["terms_zh"]
    for said in ("Stripe", "创建 24 小时后删除", "90 天后删除", "14 天后删除", "审计日志", "订单"):
        assert said in en["privacy_zh"], said
    # credits are 积分 in the Chinese texts, as everywhere else on the site
    for text in (en["terms_zh"], en["privacy_zh"]):
        assert "积分" in text and "点数" not in text
    for text in en.values():
        assert not re.search(r"\{[a-z_]+\}", str(text))  # every placeholder filled in
    page = client.get("/legal/privacy")
    assert "Stripe" in page.text and "{" not in page.text.split("<main", 1)[1].split("</main>")[0]


def test_the_periods_follow_the_operators_settings(ctx: Context, settings: Settings) -> None:
    changed = settings.model_copy(
        update={
            "retention_hours": 6,
            "mail_keep_sent_hours": 1.5,
            "mail_keep_failed_days": 3,
            "known_device_days": 30,
            "session_days": 7,
            "password_reset_minutes": 20,
        }
    )
    there = build_context(changed)
    try:
        with TestClient(create_app(there)) as client:
            current = client.get("/api/v1/legal/current").json()
    finally:
        there.close()
    en, zh = current["privacy_en"], current["privacy_zh"]
    assert "deleted 6 hours after the job was created" in en and "创建 6 小时后删除" in zh
    assert "1.5 hours after sending" in en and "3 days after we gave up" in en
    assert "30 days after the last sign-in" in en and "30 天后删除" in zh
    assert "or 7 days pass" in en and "20 minutes after they were sent" in en
    # Stored as written: the placeholders, not the figures of the day it was published.
    with ctx.db.transaction() as s:
        assert "{retention_hours}" in legal.current(s).privacy_en


def test_a_period_of_one_reads_in_the_singular(settings: Settings) -> None:
    one = settings.model_copy(update={"retention_hours": 1, "known_device_days": 1})
    text = "Kept {retention_hours} hours, then {known_device_days} days; {session_days} days."
    assert legal.render(text, one) == f"Kept 1 hour, then 1 day; {one.session_days} days."
    assert legal.render("保留 {retention_hours} 小时", one) == "保留 1 小时"


def test_an_installation_on_version_1_gets_version_2_and_everyone_is_asked_again(
    client: TestClient, ctx: Context, settings: Settings
) -> None:
    key = _user_of_release_1(ctx)
    _start(settings)
    # Version 1 stays in the history (people accepted it); version 2 is in force.
    assert _published(ctx) == [(1, BUILT_IN), (2, BUILT_IN)]
    assert "no third-party tracking" in client.get("/api/v1/legal/versions/1").json()["privacy_en"]
    assert client.get("/api/v1/legal/current").json()["version"] == 2
    # Told as when an admin publishes: an email, the audit log, the banner, the gate.
    # (in both languages: this account never chose one, see test_terms_mail.py)
    both = "RemoveAny terms updated (version 2) / RemoveAny 服务条款已更新（第 2 版）"  # noqa: RUF001
    assert _terms_mails(ctx) == [f"ada@example.com: {both}"]
    with ctx.db.transaction() as s:
        entry = s.scalars(select(AuditEntry)).one()
        assert (entry.action, entry.target, entry.actor) == ("terms.publish", "terms v2", BUILT_IN)
    refused = submit(client, key)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "terms_not_accepted"
    assert "version 2" in refused.json()["error"]["message"]
    assert login(client, "ada@example.com").status_code == 200
    app = client.get("/app").text
    assert 'data-notice="terms"' in app and "We updated our Terms" in app
    accepted = client.post("/api/v1/legal/accept", json={"version": 2}, headers={"X-Api-Key": key})
    assert accepted.status_code == 200
    assert submit(client, key).status_code == 202
    _start(settings)  # the next start: nothing new, nobody emailed again
    assert _published(ctx) == [(1, BUILT_IN), (2, BUILT_IN)] and len(_terms_mails(ctx)) == 1


def test_migrate_alone_publishes_nothing_and_nothing_enforces_other_terms(
    ctx: Context, settings: Settings
) -> None:
    """`removeany migrate` only migrates: publishing the built-in version 2 (its history row,
    audit entry and emails) waits for the first `serve` or operator command. Meanwhile no
    process enforces other terms: with no version stored, the one in force is the newest
    built-in version (`legal.current`), which is what a process that never publishes reads (a
    `removeany worker` builds its context without migrating, and never checks terms: the gate
    is at submission, in `serve` and `removeany batch`, which publish first), and what the
    first start then publishes."""
    _user_of_release_1(ctx)
    env = {"REMOVEANY_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["REMOVEANY_DATABASE_URL"] = settings.database_url
    migrated = CliRunner().invoke(cli.app, ["migrate"], env=env)
    assert migrated.exit_code == 0, migrated.output
    assert _published(ctx) == [] and _terms_mails(ctx) == []
    worker = build_context(settings)  # as jobs/celery_worker._task_context builds it
    try:
        with worker.db.transaction() as s:
            in_force = legal.current(s)
            with pytest.raises(legal.TermsNotAccepted):
                legal.require_current(s, s.scalars(select(User)).one())
    finally:
        worker.close()
    assert in_force.version == 2
    _start(settings)
    with ctx.db.transaction() as s:
        published = legal.current(s)
    assert _published(ctx) == [(1, BUILT_IN), (2, BUILT_IN)] and len(_terms_mails(ctx)) == 1
    assert (published.version, published.terms_en, published.privacy_zh) == (
        in_force.version,
        in_force.terms_en,
        in_force.privacy_zh,
    )


def test_an_operators_own_version_stays_in_force(
    client: TestClient, ctx: Context, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    key = _user_of_release_1(ctx)
    admin = make_user(ctx, "root@example.com", credits=0)
    own = "## Ours\nThe operator's own privacy policy, with its own words."
    with ctx.db.transaction() as s:  # as the earlier release's `publish` stored it
        s.add(
            LegalVersion(
                version=1,
                summary=texts.VERSION_1_SUMMARY,
                terms_en=texts.TERMS_EN,
                terms_zh=texts.TERMS_ZH,
                privacy_en=texts.PRIVACY_EN,
                privacy_zh=texts.PRIVACY_ZH,
                published_at=datetime(2026, 11, 25, tzinfo=UTC),
                published_by=BUILT_IN,
            )
        )
        s.add(
            LegalVersion(
                version=2,
                summary="Our own terms.",
                terms_en=own,
                terms_zh=own,
                privacy_en=own,
                privacy_zh=own,
                published_at=datetime(2026, 12, 1, tzinfo=UTC),
                published_by_id=admin.id,
                published_by="",
            )
        )
    with caplog.at_level(logging.WARNING, logger="removeany.legal.install"):
        _start(settings)
    assert _published(ctx) == [(1, BUILT_IN), (2, "")]
    current = client.get("/api/v1/legal/current").json()
    assert current["version"] == 2 and current["privacy_en"] == own
    assert _terms_mails(ctx) == []
    # The operator is told that a newer built-in text exists, and how to read it.
    (told,) = [r.getMessage() for r in caplog.records]
    assert "your own version 2 stays in force" in told and "builtin-terms" in told
    # And on /admin, in the terms section.
    with ctx.db.transaction() as s:
        row = s.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    assert login(client, "root@example.com").status_code == 200
    assert "data-builtin-withheld" in client.get("/admin").text
    assert submit(client, key).json()["error"]["code"] == "terms_not_accepted"  # theirs, v2
    # Once they publish a version of their own after it, the note goes.
    with ctx.db.transaction() as s:
        legal.publish(
            s,
            Actor(admin.id, "root@example.com"),
            summary="Ours again.",
            now=ctx.now(),
            terms_en=own,
            terms_zh=own,
            privacy_en=own,
            privacy_zh=own,
        )
    assert "data-builtin-withheld" not in client.get("/admin").text


def test_builtin_terms_writes_the_texts_to_compare(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.app, ["admin", "builtin-terms", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    assert "built-in version 2" in result.output
    assert (tmp_path / "v" / "privacy_en.md").read_text(encoding="utf-8") == texts.PRIVACY_V2_EN
    assert (tmp_path / "v" / "terms_zh.md").read_text(encoding="utf-8") == texts.TERMS_V2_ZH


def test_two_processes_starting_together_publish_it_once(ctx: Context) -> None:
    """Two `serve` processes starting at once on an installation still on version 1: one
    publishes version 2 and emails; the other waits for it (PostgreSQL: its insert of the same
    version conflicts; SQLite: the write lock) and publishes nothing."""
    _user_of_release_1(ctx)
    first = ctx.db.sessionmaker()
    first.begin()  # BEGIN IMMEDIATE on SQLite: the write lock from here
    assert legal.install_builtin(first, base_url="http://testserver", now=ctx.now()).replaced
    second: list[legal.Installed] = []
    other = threading.Thread(target=lambda: second.append(install_builtin_terms(ctx)))
    other.start()
    other.join(timeout=1)
    assert other.is_alive()  # waiting for the first to finish
    first.commit()
    first.close()
    other.join(timeout=30)
    assert second == [legal.Installed()]
    assert _published(ctx) == [(1, BUILT_IN), (2, BUILT_IN)] and len(_terms_mails(ctx)) == 1
