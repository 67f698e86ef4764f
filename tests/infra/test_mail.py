"""Transports: SMTP to a real server (aiosmtpd), and .eml files in the outbox folder."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from removeany.app import create_app
from removeany.context import build_context
from removeany.infra.mail import DeliveryError, FolderTransport, SmtpTransport, build_message
from removeany.infra.settings import Settings
from tests.helpers import make_user
from tests.smtp import Collect, Refuse, free_port, start

WHEN = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def message(to: str = "zoe@example.com", body: str = "Open https://x/verify?token=abc\n") -> Any:
    return build_message(
        "RemoveAny <no-reply@x>", to, "Confirm", body, message_id="<1@x>", date=WHEN
    )


def smtp_settings(tmp_path: Path, port: int) -> Settings:
    return Settings(data_dir=tmp_path, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=port)


def test_smtp_transport_delivers_to_a_real_server(tmp_path: Path) -> None:
    handler, port = Collect(), free_port()
    controller = start(handler, port)
    try:
        with SmtpTransport(smtp_settings(tmp_path, port)).connect() as connection:
            connection.send(message())
    finally:
        controller.stop()
    (received,) = handler.messages
    assert received["To"] == "zoe@example.com" and received["Subject"] == "Confirm"
    assert received["Message-ID"] == "<1@x>" and "verify?token=abc" in received.get_payload()


def test_smtp_transport_says_why_when_the_server_is_down(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with (
        pytest.raises(DeliveryError) as caught,
        SmtpTransport(smtp_settings(tmp_path, port)).connect(),
    ):
        pass
    assert caught.value.broken and not caught.value.permanent
    assert f"SMTP server 127.0.0.1:{port} unreachable" in caught.value.reason


def test_a_refused_recipient_is_a_permanent_failure(tmp_path: Path) -> None:
    handler, port = Refuse(), free_port()
    controller = start(handler, port)
    try:
        with (
            SmtpTransport(smtp_settings(tmp_path, port)).connect() as connection,
            pytest.raises(DeliveryError) as caught,
        ):
            connection.send(message())
    finally:
        controller.stop()
    assert caught.value.permanent and not caught.value.broken
    assert "550 5.1.1 no such mailbox here" in caught.value.reason
    assert handler.messages == []


class Slow(Collect):
    """A server far away: five seconds for each message (a request that waited for it takes
    that long; one that does not answers in well under half of it, even on a loaded machine:
    0.9 s was seen against a bound of 0.8 s with a one-second server)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(5)
        return str(await super().handle_DATA(server, session, envelope))


def test_a_reset_request_does_not_wait_for_the_smtp_server(settings: Settings) -> None:
    """Only an address with an account gets a reset link, so a request that waited for the
    SMTP server answered later for it (65 ms against 5 ms on this machine's own server):
    the same sentence, but the time told who has an account."""
    handler, port = Slow(), free_port()
    controller = start(handler, port)
    smtp = settings.model_copy(update={"mail_backend": "smtp", "smtp_port": port})
    ctx = build_context(smtp)
    try:
        make_user(ctx, "ada@example.com", credits=0)
        with TestClient(create_app(ctx, run_workers=False)) as client:
            started = time.monotonic()
            asked = client.post("/api/v1/auth/password-reset", json={"email": "ada@example.com"})
            answered = time.monotonic() - started
        assert asked.status_code == 202 and answered < 2.5, answered
    finally:
        ctx.close()  # lets the sender finish the email it is sending
        controller.stop()
    (received,) = handler.messages
    assert received["To"] == "ada@example.com" and "reset-password?token=" in str(received)


def test_outbox_writes_readable_eml_files(tmp_path: Path) -> None:
    with FolderTransport(tmp_path / "outbox").connect() as connection:
        connection.send(message("a@example.com", "héllo wörld\n"))
    (path,) = (tmp_path / "outbox").glob("*.eml")
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = parsed.get_body()
    assert body is not None and body.get_content() == "héllo wörld\n"
    assert list((tmp_path / "outbox").glob(".*.tmp")) == []


def test_an_outbox_that_cannot_be_written_says_where(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("a file where the folder should be")
    with (
        pytest.raises(DeliveryError) as caught,
        FolderTransport(tmp_path / "outbox").connect() as connection,
    ):
        connection.send(message())
    assert caught.value.broken
    assert f"could not write to {tmp_path / 'outbox'}" in caught.value.reason
