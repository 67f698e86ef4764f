"""A real SMTP server (aiosmtpd) on a local port, for tests of outgoing mail."""

from __future__ import annotations

import email.message
import socket
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message


class Collect(Message):
    """Keeps every message it accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[email.message.Message] = []

    def handle_message(self, message: email.message.Message) -> None:
        self.messages.append(message)


class Refuse(Collect):
    """Refuses every recipient for good, as a server does for a mailbox that does not exist."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return "550 5.1.1 no such mailbox here"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(handler: Collect, port: int) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


class RefuseQuoting(Collect):
    """Refuses every recipient quoting the address, as Postfix does: `code` 5xx for good,
    4xx for now."""

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return f"{self.code} <{address}>: Recipient address rejected: User unknown"
