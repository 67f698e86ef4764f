"""The real app over a real database (SQLite and PostgreSQL), outbox mail and storage."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from fastapi.testclient import TestClient

from removeany.app import create_app
from removeany.context import Context
from removeany.infra.db import upgrade

PASSWORD = "correct horse battery"


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


def mails(ctx: Context, to: str | None = None) -> list[EmailMessage]:
    """Mail written to the outbox, oldest first (optionally only to one address)."""
    found = []
    for path in sorted(ctx.settings.outbox_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if to is None or msg["To"] == to:
            found.append(msg)
    return found


def body_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(ctx: Context, to: str, path: str) -> str:
    """The newest link to `path` (e.g. /reset-password) mailed to `to`."""
    pattern = re.compile(rf"https?://\S+{re.escape(path)}\?token=[\w.\-]+")
    for msg in reversed(mails(ctx, to)):
        found = pattern.search(body_of(msg))
        if found:
            return found.group(0)
    raise AssertionError(f"no {path} link mailed to {to}")


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


def login(client: TestClient, email: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/auth/login", json={"email": email, "password": password, **extra})


@pytest.fixture
def database_before(request: pytest.FixtureRequest) -> Callable[[str, str], str]:
    """`database_before(backend, trust_head)`: the URL of a new database ("sqlite" or
    "postgresql") migrated to the release before a trust change: every other branch at the
    head it had then, the trust branch only up to `trust_head`. A migration test writes rows
    the old way there, then upgrades."""

    def make(backend: str, trust_head: str) -> str:
        url: str = request.getfixturevalue("empty_database")(backend)
        for head in ("0002", "0006_user_locale", "0010_outgoing_mail", trust_head):
            upgrade(url, head)
        return url

    return make
