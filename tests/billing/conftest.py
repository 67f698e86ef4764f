"""Billing fixtures: the real app, and a stand-in for Stripe's API over real HTTP, so orders
are placed through StripeProvider as in production."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from removeany.context import Context
from tests.api.conftest import client
from tests.conftest import TestClock

__all__ = ["client"]

WEBHOOK_SECRET = "whsec_test_secret"


class _StripeApi(BaseHTTPRequestHandler):
    """POST /v1/checkout/sessions answers a session whose id is `cs_test_` + the order id;
    each session's form is kept in `sessions` for tests to read."""

    sessions: ClassVar[list[dict[str, list[str]]]] = []

    def do_POST(self) -> None:
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.sessions.append(form)
        if self.path != "/v1/checkout/sessions" or not self.headers["Authorization"]:
            self.send_error(404)
            return
        order_id = form["client_reference_id"][0]
        body = json.dumps(
            {"id": f"cs_test_{order_id}", "url": f"https://checkout.stripe.test/c/{order_id}"}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def stripe_sessions() -> list[dict[str, list[str]]]:
    """The checkout sessions the stand-in Stripe was asked for (their forms), in order."""
    return _StripeApi.sessions


@pytest.fixture
def stripe_api() -> Iterator[str]:
    _StripeApi.sessions.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StripeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def stripe_ctx(ctx: Context, clock: TestClock, stripe_api: str) -> Context:
    """Stripe as the provider, with a webhook secret and a clock near real time (webhook
    signatures carry the real time)."""
    ctx.settings.payment_provider = "stripe"
    ctx.settings.stripe_secret_key = "sk_test_key"
    ctx.settings.stripe_api_base = stripe_api
    ctx.settings.stripe_webhook_secret = WEBHOOK_SECRET
    clock.now = clock.now.fromtimestamp(time.time(), tz=clock.now.tzinfo)
    ctx.clock = clock
    return ctx
