"""Outgoing mail is written in the transaction that causes it and delivered after commit: never
for a rollback, never lost to a server that is down or a process that ends, sent once by any
number of senders. Real SMTP server (aiosmtpd), real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from removeany.accounts import flows
from removeany.accounts import service as accounts
from removeany.accounts.models import User
from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.infra.db import Database
from removeany.infra.mail import recipient_tag
from removeany.infra.settings import Settings
from removeany.mail import service as mail
from removeany.mail.models import OutgoingMail
from removeany.mail.repository import claim_due
from removeany.mail.sender import CLAIM
from removeany.maintenance import run_sweeps
from removeany.privacy import service as privacy
from tests.billing.test_pages import text_of, web_login
from tests.conftest import TestClock
from tests.helpers import make_user
from tests.smtp import Collect, Refuse, RefuseQuoting, free_port, start

PASSWORD = "correct horse battery"


def smtp_context(settings: Settings, port: int, clock: TestClock) -> Context:
    ctx = build_context(settings.model_copy(update={"mail_backend": "smtp", "smtp_port": port}))
    ctx.clock = clock
    return ctx


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def smtp_ctx(settings: Settings, port: int, clock: TestClock) -> Iterator[Context]:
    """SMTP to `port`, where no server listens until a test starts one."""
    ctx = smtp_context(settings, port, clock)
    yield ctx
    ctx.close()


def rows(ctx: Context) -> list[OutgoingMail]:
    with ctx.db.transaction() as session:
        return list(session.scalars(select(OutgoingMail).order_by(OutgoingMail.id)))


def ask_reset(ctx: Context, address: str = "ada@example.com") -> None:
    flows.request_password_reset(ctx, address, ip="203.0.113.7")


def wait_until(done: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_rolled_back_transaction_sends_nothing(smtp_ctx: Context, port: int) -> None:
    """A sign-up whose transaction fails after the confirmation email was written (any later
    step, or the commit itself): the email went out before, for an account that never
    existed, with a link for its id."""
    handler = Collect()
    controller = start(handler, port)
    try:
        with pytest.raises(RuntimeError), smtp_ctx.db.transaction() as session:
            user = accounts.create_user(session, "zoe@example.com", PASSWORD, now=smtp_ctx.now())
            accounts.send_verification(
                session, smtp_ctx.secret_key, "http://x", user, now=smtp_ctx.now()
            )
            raise RuntimeError("the commit failed")
        assert smtp_ctx.mail.deliver() == 0
    finally:
        controller.stop()
    assert handler.messages == [] and rows(smtp_ctx) == []


def test_a_rolled_back_transaction_writes_nothing_to_the_outbox_folder(ctx: Context) -> None:
    with pytest.raises(RuntimeError), ctx.db.transaction() as session:
        user = accounts.create_user(session, "zoe@example.com", PASSWORD, now=ctx.now())
        accounts.send_verification(session, ctx.secret_key, "http://x", user, now=ctx.now())
        raise RuntimeError("the commit failed")
    assert list(ctx.settings.outbox_dir.glob("*.eml")) == [] and rows(ctx) == []


def test_the_outbox_folder_has_the_email_when_the_request_returns(ctx: Context) -> None:
    """The embedded default: `make run` users read their links in DATA_DIR/outbox."""
    make_user(ctx, "ada@example.com", credits=0)
    with TestClient(create_app(ctx, run_workers=False)) as client:
        asked = client.post("/api/v1/auth/password-reset", json={"email": "ada@example.com"})
        assert asked.status_code == 202
        (path,) = ctx.settings.outbox_dir.glob("*.eml")
    assert "reset-password?token=" in path.read_text()
    (row,) = rows(ctx)
    assert row.status == "sent" and row.body == "" and row.to_address == "ada@example.com"


def test_an_email_waits_for_a_server_that_is_down_and_goes_when_it_is_back(
    smtp_ctx: Context, port: int, clock: TestClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    make_user(smtp_ctx, "ada@example.com", credits=0)
    ask_reset(smtp_ctx)
    smtp_ctx.mail.close()  # the sender tried (the commit woke it) and is done
    (row,) = rows(smtp_ctx)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error is not None and f"127.0.0.1:{port} unreachable" in row.last_error
    assert row.due_at == clock.now + timedelta(seconds=30)
    assert any(
        f"email #{row.id} to {recipient_tag('ada@example.com')} not delivered (attempt 1): "
        f"SMTP server 127.0.0.1:{port} unreachable" in r.getMessage()
        for r in caplog.records
    )

    handler = Collect()
    controller = start(handler, port)
    try:
        assert smtp_ctx.mail.deliver() == 0  # not due yet: the pause grows with each failure
        clock.now += timedelta(seconds=30)
        assert smtp_ctx.mail.deliver() == 1
        assert smtp_ctx.mail.deliver() == 0
    finally:
        controller.stop()
    (received,) = handler.messages
    assert received["To"] == "ada@example.com" and "reset-password?token=" in str(received)
    (row,) = rows(smtp_ctx)
    assert row.status == "sent" and row.attempts == 2 and row.body == ""


def test_unsent_email_goes_out_after_a_restart(
    settings: Settings, port: int, clock: TestClock
) -> None:
    """An email waiting when the process ended (its server was down) is sent by the next
    `serve` when it starts, with nobody asking for anything."""
    first = smtp_context(settings, port, clock)
    make_user(first, "ada@example.com", credits=0)
    ask_reset(first)
    first.close()
    assert [r.status for r in rows(first)] == ["pending"]

    handler = Collect()
    controller = start(handler, port)
    clock.now += timedelta(minutes=1)
    second = smtp_context(settings, port, clock)
    try:
        with TestClient(create_app(second, run_workers=False)):
            wait_until(lambda: len(handler.messages) == 1)
    finally:
        second.close()
        controller.stop()
    assert "reset-password?token=" in str(handler.messages[0])
    assert [r.status for r in rows(second)] == ["sent"]


def test_an_email_claimed_by_a_sender_that_died_is_sent_when_its_claim_lapses(
    smtp_ctx: Context, port: int, clock: TestClock
) -> None:
    db = Database(smtp_ctx.settings.sqlalchemy_url)  # no sender: the email just waits
    try:
        with db.transaction() as session:
            mail.write(
                session, to="a@example.com", subject="Hi", body="x\n", user_id=None, now=clock.now
            )
        with db.transaction() as session:  # a sender claims it, then its process is killed
            (_claimed,) = claim_due(
                session, now=clock.now, claim="dead", until=clock.now + CLAIM, limit=20
            )
    finally:
        db.dispose()
    handler = Collect()
    controller = start(handler, port)
    try:
        assert smtp_ctx.mail.deliver() == 0
        clock.now += CLAIM
        assert smtp_ctx.mail.deliver() == 1
    finally:
        controller.stop()
    assert [m["To"] for m in handler.messages] == ["a@example.com"]


class SlowCollect(Collect):
    """A server that takes a moment per email, so two senders overlap."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.01)
        return str(await super().handle_DATA(server, session, envelope))


def test_two_senders_send_each_email_once(settings: Settings, port: int, clock: TestClock) -> None:
    """Two processes (two `serve`s) deliver from the same table at the same time."""
    db = Database(settings.sqlalchemy_url)
    try:
        with db.transaction() as session:
            for n in range(60):
                mail.write(
                    session,
                    to=f"u{n}@example.com",
                    subject=f"n{n}",
                    body="x\n",
                    user_id=None,
                    now=clock.now,
                )
    finally:
        db.dispose()
    handler = SlowCollect()
    controller = start(handler, port)
    senders = [smtp_context(settings, port, clock) for _ in range(2)]
    counts: list[int] = []
    ready = threading.Barrier(2)

    def send(ctx: Context) -> None:
        ready.wait()
        counts.append(ctx.mail.deliver())

    try:
        threads = [threading.Thread(target=send, args=(ctx,)) for ctx in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for ctx in senders:
            ctx.close()
        controller.stop()
    subjects = sorted(str(m["Subject"]) for m in handler.messages)
    assert subjects == sorted(f"n{n}" for n in range(60))
    assert len({m["Message-ID"] for m in handler.messages}) == 60
    assert sum(counts) == 60 and min(counts) > 0, counts


def test_a_refused_email_is_given_up_and_shown_to_administrators(
    smtp_ctx: Context, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    make_user(smtp_ctx, "ada@example.com", credits=0)
    controller = start(Refuse(), port)
    try:
        ask_reset(smtp_ctx)
        smtp_ctx.mail.close()
    finally:
        controller.stop()
    (row,) = rows(smtp_ctx)
    assert row.status == "failed" and row.attempts == 1 and row.body == ""
    assert row.last_error is not None and "550 5.1.1 no such mailbox here" in row.last_error
    assert any(
        r.levelno == logging.ERROR
        and f"email #{row.id} to {recipient_tag('ada@example.com')} given up (attempt 1)"
        in r.getMessage()
        for r in caplog.records
    )

    admin = make_user(smtp_ctx, "root@example.com", credits=0)
    with smtp_ctx.db.transaction() as session:
        found = session.get(User, admin.id)
        assert found is not None
        found.is_admin = True
    with TestClient(create_app(smtp_ctx, run_workers=False)) as client:
        web_login(client, "root@example.com")
        page = client.get("/admin").text
    table = text_of(page.split('id="failing-mail"', 1)[1].split("</table>", 1)[0])
    assert "Reset your RemoveAny password" in table and "ada@example.com" in table
    assert "Given up" in table and "550 5.1.1 no such mailbox here" in table


@pytest.mark.parametrize(
    ("code", "level"), [("550 5.1.1", logging.ERROR), ("450 4.1.1", logging.WARNING)]
)
def test_a_refusal_quoting_the_address_is_logged_without_it(
    smtp_ctx: Context, port: int, caplog: pytest.LogCaptureFixture, code: str, level: int
) -> None:
    """The server's refusal quoted the recipient, and the log line quoted the refusal: the
    line now names the email by id and the recipient by its tag, the server's code and words
    kept and the address masked; the row (shown to admins, deleted with the email) keeps it."""
    caplog.set_level(logging.WARNING)
    make_user(smtp_ctx, "ada@example.com", credits=0)
    controller = start(RefuseQuoting(code), port)
    try:
        ask_reset(smtp_ctx)
        smtp_ctx.mail.close()
    finally:
        controller.stop()
    (row,) = rows(smtp_ctx)
    assert row.last_error is not None and "<ada@example.com>" in row.last_error
    (line,) = [r.getMessage() for r in caplog.records if r.name == "removeany.mail.sender"]
    assert "ada@example.com" not in line
    assert f"email #{row.id} to {recipient_tag('ada@example.com')} " in line
    assert f"{code} <[address]>: Recipient address rejected: User unknown" in line
    assert [r.levelno for r in caplog.records if r.name == "removeany.mail.sender"] == [level]


def test_retries_end_after_the_retry_period(smtp_ctx: Context, port: int, clock: TestClock) -> None:
    make_user(smtp_ctx, "ada@example.com", credits=0)
    ask_reset(smtp_ctx)
    smtp_ctx.mail.close()
    pauses = []
    while (row := rows(smtp_ctx)[0]).status == "pending":
        pauses.append((row.due_at - clock.now).total_seconds())
        clock.now = row.due_at
        smtp_ctx.mail.deliver()
    assert pauses[:4] == [30, 60, 120, 240] and max(pauses) == 3600
    assert row.status == "failed" and clock.now == row.created_at + timedelta(hours=24)
    assert row.last_error is not None and "unreachable" in row.last_error


def test_erasing_an_account_deletes_its_unsent_email(
    smtp_ctx: Context, port: int, clock: TestClock
) -> None:
    """The waiting reset link dies with the account; the deletion notice still goes."""
    make_user(smtp_ctx, "ada@example.com", credits=0)
    ask_reset(smtp_ctx)
    smtp_ctx.mail.close()
    with smtp_ctx.db.transaction() as session:
        user_id = accounts.authenticate(session, "ada@example.com", PASSWORD).id
    privacy.delete_account(smtp_ctx, user_id, PASSWORD)
    smtp_ctx.mail.close()
    handler = Collect()
    controller = start(handler, port)
    try:
        clock.now += timedelta(minutes=5)
        smtp_ctx.mail.deliver()
    finally:
        controller.stop()
    (received,) = handler.messages
    assert received["To"] == "ada@example.com"
    assert received["Subject"] == "Your RemoveAny account was deleted"
    assert [r.subject for r in rows(smtp_ctx)] == ["Your RemoveAny account was deleted"]


def test_sent_email_is_deleted_after_its_retention(ctx: Context, clock: TestClock) -> None:
    ctx.clock = clock
    make_user(ctx, "ada@example.com", credits=0)
    ask_reset(ctx)
    (row,) = rows(ctx)
    assert row.status == "sent" and row.body == ""  # the live link is gone at once
    clock.now += timedelta(hours=23)
    assert run_sweeps(ctx).deleted_emails == 0
    (copy,) = ctx.settings.outbox_dir.glob("*.eml")  # the outbox folder's copy, link and all
    assert b"/reset-password?token=" in copy.read_bytes()
    clock.now += timedelta(hours=1, seconds=1)
    assert run_sweeps(ctx).deleted_emails == 2  # the row and the copy
    assert rows(ctx) == [] and not copy.exists()


class QuotingFault:
    """A transport with a bug whose exception quotes the recipient, as a library's may."""

    immediate = False

    @contextmanager
    def connect(self) -> Iterator[QuotingFault]:
        yield self

    def send(self, msg: EmailMessage) -> None:
        raise KeyError(f"no route to {msg['To']}")


def test_an_unexpected_error_quoting_the_address_is_logged_without_it(
    smtp_ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """log.exception printed the exception's text, address and all; the traceback is now
    logged with addresses masked, its type and location kept."""
    caplog.set_level(logging.WARNING)
    make_user(smtp_ctx, "ada@example.com", credits=0)
    # Before the email is written: the commit wakes the sender thread, which may try it
    # before this test does.
    smtp_ctx.mail.transport = QuotingFault()
    ask_reset(smtp_ctx)
    smtp_ctx.mail.deliver()
    wait_until(lambda: "could not be handed over" in caplog.text)
    (row,) = rows(smtp_ctx)
    logged = caplog.text
    assert f"email #{row.id} could not be handed over" in logged
    assert "KeyError: 'no route to [address]'" in logged and "in send" in logged
    assert "test_outbox.py" in logged
    assert "ada@example.com" not in logged


def test_the_message_id_is_in_the_senders_domain(
    settings: Settings, port: int, clock: TestClock
) -> None:
    """Mail filters read a Message-ID in another domain than From's as a sign of spam: it was
    always `@removeany.local`, whatever REMOVEANY_MAIL_FROM said. Its unique part is the one
    stored when the email was written, so a retry sends the same id."""
    ctx = smtp_context(
        settings.model_copy(update={"mail_from": "Photo Shop <noreply@shop.example>"}), port, clock
    )
    handler = Collect()
    controller = start(handler, port)
    try:
        make_user(ctx)
        ask_reset(ctx)
        wait_until(lambda: len(handler.messages) == 1)
        stored = rows(ctx)[-1].message_id
    finally:
        controller.stop()
        ctx.close()
    (sent,) = handler.messages
    assert sent["From"] == "Photo Shop <noreply@shop.example>"
    unique = stored.strip("<>").rpartition("@")[0]
    assert sent["Message-ID"] == f"<{unique}@shop.example>"
