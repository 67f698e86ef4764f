"""Outgoing mail through a real SMTP server (aiosmtpd) and into the outbox folder."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from removeany.infra.mail import OutboxMailer, make_mailer
from removeany.infra.settings import Settings


class Collect(Message):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[email.message.Message] = []

    def handle_message(self, message: email.message.Message) -> None:
        self.messages.append(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collect, int]]:
    handler = Collect()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def test_smtp_backend_delivers_to_a_real_server(
    smtp_server: tuple[Collect, int], tmp_path: Path
) -> None:
    handler, port = smtp_server
    settings = Settings(
        data_dir=tmp_path, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=port
    )
    make_mailer(settings).send("zoe@example.com", "Confirm", "Open https://x/verify?token=abc\n")
    (message,) = handler.messages
    assert message["To"] == "zoe@example.com" and message["Subject"] == "Confirm"
    assert "verify?token=abc" in message.get_payload()


def test_outbox_writes_readable_eml_files(tmp_path: Path) -> None:
    OutboxMailer(tmp_path / "outbox", "RemoveAny <no-reply@x>").send(
        "a@example.com", "Hi", "héllo wörld\n"
    )
    (path,) = (tmp_path / "outbox").glob("*.eml")
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = parsed.get_body()
    assert body is not None and body.get_content() == "héllo wörld\n"
    assert list((tmp_path / "outbox").glob(".*.tmp")) == []
