"""Items 3 and 4: admins search, restrict, ban and delete users with reasons, adjust credits;
every action is in an append-only audit log; services can be suspended or disabled."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from removeany import i18n
from removeany.accounts.models import User
from removeany.context import Context
from removeany.credits.models import CreditEntry, CreditLot
from removeany.infra.db import Database, upgrade
from removeany.legal import service as legal
from removeany.moderation import audit
from removeany.moderation.models import AuditEntry
from tests.billing.test_pages import web_login
from tests.helpers import make_api_key, make_user, removeany
from tests.trust.conftest import login


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def submit(client: TestClient, key: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/jobs", headers={"X-Api-Key": key}, files={"file": ("a.png", _png(), "image/png")}
    )


def make_admin(ctx: Context) -> str:
    admin = make_user(ctx, "root@example.com", credits=0)
    with ctx.db.transaction() as s:
        row = s.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    return make_api_key(ctx, admin)


def test_non_admins_are_refused(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx))
    r = client.get("/api/v1/admin/users", headers={"X-Api-Key": key})
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"


def test_restrict_ban_reinstate_delete_with_audit(client: TestClient, ctx: Context) -> None:
    admin = {"X-Api-Key": make_admin(ctx)}
    user = make_user(ctx, "eve@example.com", credits=5)
    eve_key = make_api_key(ctx, user)
    found = client.get("/api/v1/admin/users", params={"q": "eve@"}, headers=admin).json()
    assert [u["email"] for u in found] == ["eve@example.com"]
    assert found[0]["credits_available"] == 5

    no_reason = client.post(
        f"/api/v1/admin/users/{user.id}/restrict", json={"reason": ""}, headers=admin
    )
    assert no_reason.status_code == 400 and no_reason.json()["error"]["code"] == "reason_required"
    for too_short in ("ok", "废"):
        short = client.post(
            f"/api/v1/admin/users/{user.id}/restrict", json={"reason": too_short}, headers=admin
        )
        assert short.json()["error"]["code"] == "reason_required", too_short
    r = client.post(
        f"/api/v1/admin/users/{user.id}/restrict", json={"reason": "spam uploads"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["status"] == "restricted"
    refused = submit(client, eve_key)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "account_restricted"
    assert "spam uploads" in refused.json()["error"]["message"]
    assert client.get("/api/v1/me", headers={"X-Api-Key": eve_key}).status_code == 200

    assert login(client, "eve@example.com").status_code == 200
    r = client.post(f"/api/v1/admin/users/{user.id}/ban", json={"reason": "abuse"}, headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "banned"
    assert client.get("/api/v1/me").status_code == 401  # her session is gone
    assert client.get("/api/v1/me", headers={"X-Api-Key": eve_key}).status_code == 403
    banned = login(client, "eve@example.com")
    assert banned.status_code == 403 and banned.json()["error"]["code"] == "account_banned"
    client.cookies.clear()

    r = client.post(
        f"/api/v1/admin/users/{user.id}/reinstate", json={"reason": "appeal ok"}, headers=admin
    )
    assert r.json()["status"] == "active"
    assert login(client, "eve@example.com").status_code == 200
    client.cookies.clear()

    r = client.post(
        f"/api/v1/admin/users/{user.id}/credits",
        json={"amount": 7, "reason": "goodwill"},
        headers=admin,
    )
    assert r.json()["credits_available"] == 12
    r = client.post(
        f"/api/v1/admin/users/{user.id}/credits",
        json={"amount": -10, "reason": "chargeback"},
        headers=admin,
    )
    assert r.json()["credits_available"] == 2
    too_many = client.post(
        f"/api/v1/admin/users/{user.id}/credits",
        json={"amount": -10, "reason": "again"},
        headers=admin,
    )
    assert too_many.status_code == 409

    log = client.get("/api/v1/admin/audit", params={"q": "eve@"}, headers=admin).json()
    assert {e["target"] for e in log} == {"eve@example.com"}  # the account's address, now
    r = client.post(
        f"/api/v1/admin/users/{user.id}/delete", json={"reason": "asked by email"}, headers=admin
    )
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    assert r.json()["email"] == f"deleted-{user.id}@invalid"
    log = client.get("/api/v1/admin/audit", params={"user_id": user.id}, headers=admin).json()
    assert [e["action"] for e in log] == [
        "user.delete",
        "credits.revoke",
        "credits.grant",
        "user.reinstate",
        "user.ban",
        "user.restrict",
    ]
    # The log outlives the account by id, without its address (the Terms: erased on request).
    assert {e["target"] for e in log} == {f"deleted-{user.id}@invalid"}
    assert {e["target_user_id"] for e in log} == {user.id}
    assert all(e["actor"] == "root@example.com" and e["reason"] for e in log)
    with ctx.db.transaction() as s:  # the ledger stays, tied to the anonymised row
        kinds = {
            e.kind for e in s.scalars(select(CreditEntry).where(CreditEntry.user_id == user.id))
        }
        assert {"grant", "revoke"} <= kinds
        assert (
            sum(
                lot.remaining
                for lot in s.scalars(select(CreditLot).where(CreditLot.user_id == user.id))
            )
            == 0
        )


def test_audit_log_is_append_only_in_the_database(client: TestClient, ctx: Context) -> None:
    admin = {"X-Api-Key": make_admin(ctx)}
    user = make_user(ctx, "eve@example.com")
    client.post(f"/api/v1/admin/users/{user.id}/restrict", json={"reason": "test"}, headers=admin)
    for statement in (
        "UPDATE admin_audit_log SET reason = 'edited'",
        "DELETE FROM admin_audit_log",
    ):
        with pytest.raises(DBAPIError), ctx.db.transaction() as s:
            s.execute(text(statement))
    with ctx.db.transaction() as s:
        assert [e.reason for e in s.scalars(select(AuditEntry))] == ["test"]


def test_suspended_and_disabled_services(client: TestClient, ctx: Context) -> None:
    admin = {"X-Api-Key": make_admin(ctx)}
    key = make_api_key(ctx, make_user(ctx, credits=5))
    r = client.put(
        "/api/v1/admin/services/remove_background",
        json={
            "status": "suspended",
            "message": "Maintenance until 14:00 UTC.",
            "reason": "upgrade",
        },
        headers=admin,
    )
    assert r.status_code == 200
    refused = submit(client, key)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "service_suspended"
    assert "Maintenance until 14:00 UTC." in refused.json()["error"]["message"]
    compat = client.post(
        "/v1.0/removebg",
        headers={"X-Api-Key": key},
        files={"image_file": ("a.png", _png(), "image/png")},
    )
    assert compat.status_code == 503
    assert compat.json()["errors"][0]["code"] == "service_suspended"
    status = client.get("/api/v1/service-status").json()
    assert status[0]["service"] == "remove_background" and status[0]["status"] == "suspended"
    assert client.get("/api/v1/credits", headers={"X-Api-Key": key}).json()["available"] == 5
    client.put(
        "/api/v1/admin/services/remove_background",
        json={"status": "disabled", "message": "Gone.", "reason": "retired"},
        headers=admin,
    )
    assert submit(client, key).json()["error"]["code"] == "service_disabled"
    client.put(
        "/api/v1/admin/services/remove_background",
        json={"status": "active", "reason": "back"},
        headers=admin,
    )
    assert submit(client, key).status_code == 202
    # The site shows the message on every page while a service is down.
    client.put(
        "/api/v1/admin/services/remove_background",
        json={"status": "suspended", "message": "Back at noon.", "reason": "noon maintenance"},
        headers=admin,
    )
    assert "Back at noon." in client.get("/").text
    r = client.post(
        "/api/v1/admin/announcements", json={"message": "New model next week!"}, headers=admin
    )
    assert r.status_code == 201
    assert "New model next week!" in client.get("/").text
    assert client.get("/api/v1/announcements").json()[0]["message"] == "New model next week!"


def test_batch_processing_can_be_suspended_on_its_own(client: TestClient, ctx: Context) -> None:
    admin = {"X-Api-Key": make_admin(ctx)}
    key = make_api_key(ctx, make_user(ctx, credits=5))
    typo = client.put(
        "/api/v1/admin/services/remove-background",
        json={"status": "suspended", "message": "x", "reason": "typo"},
        headers=admin,
    )
    assert typo.status_code == 400 and typo.json()["error"]["code"] == "invalid_service"
    r = client.put(
        "/api/v1/admin/services/batch",
        json={"status": "suspended", "message": "Batches are paused today.", "reason": "load"},
        headers=admin,
    )
    assert r.status_code == 200
    refused = client.post(
        "/api/v1/batches",
        headers={"X-Api-Key": key},
        files=[("files", ("a.png", _png(), "image/png"))],
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "service_suspended"
    assert "Batches are paused today." in refused.json()["error"]["message"]
    assert submit(client, key).status_code == 202, "single images still work"
    assert client.get("/api/v1/credits", headers={"X-Api-Key": key}).json()["available"] == 4


def test_admin_cli(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "cli"
    env = {**os.environ, "REMOVEANY_DATA_DIR": str(data), "REMOVEANY_MODEL_DIR": str(model_dir)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return removeany(*args, env=env)

    assert (
        cli(
            "users", "create", "eve@example.com", "--password", "long enough pw", "--credits", "5"
        ).returncode
        == 0
    )
    assert "eve@example.com" in cli("admin", "users", "eve").stdout
    assert cli("admin", "ban", "eve@example.com").returncode != 0  # --reason is required
    done = cli("admin", "ban", "eve@example.com", "--reason", "fraud")
    assert done.returncode == 0 and "banned" in done.stdout, done.stderr
    assert "2 credits" in cli("admin", "credits", "-r", "fix", "eve@example.com", "--", "-3").stdout
    assert (
        cli(
            "admin",
            "service",
            "remove_background",
            "suspended",
            "-r",
            "maintenance",
            "--message",
            "Maintenance",
        ).returncode
        == 0
    )
    assert cli("admin", "delete", "eve@example.com", "-r", "gdpr", "--yes").returncode == 0
    log = cli("admin", "audit").stdout
    assert re.search(r"user\.delete\tdeleted-\d+@invalid\tgdpr", log) and "user.ban" in log
    assert "eve@example.com" not in log


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_empties_addresses_already_in_the_audit_log(
    backend: str, database_before: Callable[[str, str], str]
) -> None:
    """Entries written before the log named accounts by id kept their addresses as text; the
    migration empties them (the log is append-only: only the migration may) and reading shows
    each account's address as it is now."""
    url = database_before(backend, "0011_credential_binding")
    db = Database(url)
    try:
        with db.transaction() as s:
            for email in ("root@example.com", "eve@example.com", "ada@example.com"):
                _add_user(s, email)
            s.execute(
                text(
                    "INSERT INTO admin_audit_log (created_at, actor_id, actor, action, "
                    "target_user_id, target, reason, details) VALUES "
                    "(:at, 1, 'root@example.com', 'user.ban', 2, 'eve@example.com', 'spam', '{}'),"
                    "(:at, 1, 'root@example.com', 'user.delete', 3, 'ada@example.com', 'asked', "
                    "'{}'), (:at, NULL, 'cli:root', 'service.suspended', NULL, "
                    "'service portrait', 'maintenance', '{}')"
                ),
                {"at": datetime.now(UTC)},
            )
            s.execute(
                text(
                    "UPDATE users SET email = 'deleted-' || id || '@invalid', status = 'deleted' "
                    "WHERE email = 'ada@example.com'"
                )
            )
        upgrade(url)
        with db.transaction() as s:
            stored = s.execute(text("SELECT actor, target FROM admin_audit_log ORDER BY id"))
            assert [tuple(r) for r in stored] == [
                ("", ""),
                ("", ""),
                ("cli:root", "service portrait"),
            ]
            shown = [(e.actor, e.action, e.target) for e in audit.entries(s)]
        assert shown == [
            ("cli:root", "service.suspended", "service portrait"),
            ("root@example.com", "user.delete", "deleted-3@invalid"),
            ("root@example.com", "user.ban", "eve@example.com"),
        ]
        with pytest.raises(DBAPIError), db.transaction() as s:  # append-only again
            s.execute(text("UPDATE admin_audit_log SET reason = 'edited'"))
    finally:
        db.dispose()


def _add_user(s: Any, email: str) -> int:
    """A user row as the schema of an older release has it (the model may have more)."""
    s.execute(
        text(
            "INSERT INTO users (email, password_hash, is_admin, created_at, status) "
            "VALUES (:email, '!', false, :at, 'active')"
        ),
        {"email": email, "at": datetime.now(UTC)},
    )
    return int(s.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email}).scalar_one())


def test_an_erased_admin_leaves_no_address_in_what_they_set(
    client: TestClient, ctx: Context
) -> None:
    """A service status, an announcement and a terms version name the admin who made them by
    account id: once that admin is erased, the page shows deleted-<id>@invalid and no table
    keeps the address (each kept it as text before)."""
    root = {"X-Api-Key": make_admin(ctx)}
    ops_user = make_user(ctx, "ops@example.com", credits=0)
    with ctx.db.transaction() as s:
        row = s.get(User, ops_user.id)
        assert row is not None
        row.is_admin = True
    ops = {"X-Api-Key": make_api_key(ctx, ops_user)}
    assert (
        client.put(
            "/api/v1/admin/services/portrait",
            json={"status": "suspended", "message": "Back at 14:00.", "reason": "upgrade"},
            headers=ops,
        ).status_code
        == 200
    )
    assert (
        client.post("/api/v1/admin/announcements", json={"message": "Hello"}, headers=ops)
    ).status_code == 201
    text_long = "Updated text of the document, long enough."
    published = client.post(
        "/api/v1/admin/legal",
        json={
            "summary": "Clearer wording.",
            "terms_en": text_long,
            "terms_zh": text_long,
            "privacy_en": text_long,
            "privacy_zh": text_long,
        },
        headers=ops,
    )
    assert published.status_code == 201, published.text

    web_login(client, "root@example.com")
    shown_by = re.compile(r"data-by>([^<]*)<")
    assert [("ops@example.com" in by) for by in shown_by.findall(client.get("/admin").text)] == [
        True
    ] * 3
    assert (
        client.post(
            f"/api/v1/admin/users/{ops_user.id}/delete", json={"reason": "left"}, headers=root
        ).status_code
        == 200
    )

    page = client.get("/admin").text
    assert "ops@example.com" not in page
    erased = f"deleted-{ops_user.id}@invalid"
    assert [(erased in by) for by in shown_by.findall(page)] == [True] * 3
    with ctx.db.transaction() as s:
        for table in ("service_status", "announcements", "legal_versions"):
            rows = s.execute(text(f"SELECT * FROM {table}")).all()
            assert "ops@example.com" not in repr(rows), table


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_names_the_admins_who_set_things_by_id(
    backend: str, database_before: Callable[[str, str], str]
) -> None:
    """Rows written before kept the acting admin's address: the migration stores the account
    id instead and empties the address, also one no account has any more (an admin erased
    since); an operator's label stays."""
    url = database_before(backend, "0012_audit_names_by_id")
    db = Database(url)
    at = datetime.now(UTC)
    try:
        with db.transaction() as s:
            root_id = _add_user(s, "root@example.com")
            s.execute(
                text(
                    "INSERT INTO service_status (service, status, message, updated_at, "
                    "updated_by) VALUES ('portrait', 'suspended', 'm', :at, 'root@example.com'),"
                    "('remove_background', 'disabled', 'm', :at, 'cli:root'), "
                    "('batch', 'suspended', 'm', :at, 'gone@example.com')"
                ),
                {"at": at},
            )
            s.execute(
                text(
                    "INSERT INTO announcements (message, level, starts_at, created_at, "
                    "created_by) VALUES ('hi', 'info', :at, :at, 'root@example.com')"
                ),
                {"at": at},
            )
            s.execute(
                text(
                    "INSERT INTO legal_versions (version, summary, terms_en, terms_zh, "
                    "privacy_en, privacy_zh, published_at, published_by) VALUES "
                    "(1, '', 't', 't', 'p', 'p', :at, 'built in'), "
                    "(2, '', 't', 't', 'p', 'p', :at, 'root@example.com')"
                ),
                {"at": at},
            )
        upgrade(url)
        with db.transaction() as s:
            services = s.execute(
                text("SELECT service, updated_by_id, updated_by FROM service_status ORDER BY 1")
            )
            assert [tuple(r) for r in services] == [
                ("batch", None, ""),
                ("portrait", root_id, ""),
                ("remove_background", None, "cli:root"),
            ]
            announced = s.execute(text("SELECT created_by_id, created_by FROM announcements"))
            assert [tuple(r) for r in announced] == [(root_id, "")]
            versions = s.execute(
                text("SELECT published_by_id, published_by FROM legal_versions ORDER BY version")
            )
            assert [tuple(r) for r in versions] == [(None, "built in"), (root_id, "")]
            erased = s.get(User, root_id)
            assert erased is not None
            erased.email = f"deleted-{root_id}@invalid"
        with db.transaction() as s:
            assert legal.publisher(s, 2) == f"deleted-{root_id}@invalid"
            assert legal.publisher(s, 1) == "built in"
    finally:
        db.dispose()


def test_the_built_in_publisher_is_shown_in_the_pages_language(
    client: TestClient, ctx: Context
) -> None:
    """The built-in terms' publisher showed as 'built in' on the Chinese admin page; it is
    stored as written (the API and the database keep it)."""
    make_admin(ctx)
    web_login(client, "root@example.com")
    client.headers["Accept-Language"] = "zh-CN"
    (shown,) = re.findall(r"data-by>([^<]*)<", client.get("/admin").text)
    assert "built in" not in shown
    assert i18n.translate(audit.BUILT_IN, "zh-CN") in shown
    with ctx.db.transaction() as s:
        assert legal.publisher(s, 1) == "built in"


def test_a_two_character_chinese_reason_is_a_reason_and_the_refusal_keeps_it(
    client: TestClient, ctx: Context
) -> None:
    """ "维护" (maintenance) or "违规" (abuse) is a Chinese administrator's whole reason; the
    restricted user's refusal, read in Chinese, keeps it."""
    admin = {"X-Api-Key": make_admin(ctx)}
    user = make_user(ctx, "eve@example.com", credits=5)
    restricted = client.post(
        f"/api/v1/admin/users/{user.id}/restrict", json={"reason": "违规"}, headers=admin
    )
    assert restricted.status_code == 200, restricted.text
    refused = submit(client, make_api_key(ctx, user))
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "account_restricted" and "(违规)" in error["message"]
    with i18n.use("zh-CN"):
        shown = i18n.error_text(error["message"], error["code"])
        english, chinese = i18n.error_forms()["account_restricted"]
    assert error["message"] == english.replace("{message}", "违规")
    assert chinese != english and shown == chinese.replace("{message}", "违规")
