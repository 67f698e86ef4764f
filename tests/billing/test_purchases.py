"""Buying credit packs: sandbox checkout, Stripe webhooks (signed, timed, replay-proof),
idempotent purchases."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient

from removeany.app import create_app
from removeany.billing.providers import sign_stripe_payload
from removeany.context import Context, build_context
from removeany.infra.settings import Settings
from tests.billing.conftest import WEBHOOK_SECRET as SECRET
from tests.conftest import TestClock
from tests.helpers import make_api_key, make_user


def credits_of(client: TestClient, key: str) -> dict:  # type: ignore[type-arg]
    return client.get("/api/v1/credits", headers={"X-Api-Key": key}).json()


def test_sandbox_purchase_arrives_as_a_paid_lot_expiring_in_a_year(
    client: TestClient, ctx: Context
) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=0))
    packs = client.get("/api/v1/billing/packs").json()
    assert [p["slug"] for p in packs] == ["starter", "standard", "pro"]
    order = client.post(
        "/api/v1/billing/checkout", headers={"X-Api-Key": key}, json={"pack": "starter"}
    ).json()
    assert order["status"] == "pending" and order["provider"] == "sandbox"
    assert order["checkout_url"] == f"/billing/sandbox/{order['id']}"
    assert credits_of(client, key)["available"] == 0
    from removeany.accounts import repository as accounts_repo
    from removeany.billing import service as billing

    with ctx.db.transaction() as s:
        user = accounts_repo.user_by_email(s, "ada@example.com")
        assert user is not None
        billing.sandbox_pay(s, user, order["id"], now=ctx.now(), credit_days=365)
    with ctx.db.transaction() as s:
        user = accounts_repo.user_by_email(s, "ada@example.com")
        assert user is not None
        paid_twice = billing.sandbox_pay(s, user, order["id"], now=ctx.now(), credit_days=365)
        assert paid_twice.status == "paid"
    view = credits_of(client, key)
    assert view["available"] == 50
    (lot,) = view["lots"]
    assert lot["source"] == "purchase"
    orders = client.get("/api/v1/billing/orders", headers={"X-Api-Key": key}).json()
    assert orders[0]["status"] == "paid" and orders[0]["paid_at"] is not None


def test_a_public_site_sells_no_credits_on_the_test_checkout(settings: Settings) -> None:
    """An operator who serves the site over https and left the payment provider unset must
    not have the sandbox's test checkout, where anyone "buys" credits without paying: buying
    answers that payments are not configured until Stripe's keys are set."""
    site = "https://removeany.example"
    public = Settings(**{**settings.model_dump(exclude={"payment_provider"}), "base_url": site})
    assert public.payment_provider == "stripe"
    ctx = build_context(public)
    try:
        key = make_api_key(ctx, make_user(ctx, credits=0))
        with TestClient(create_app(ctx), base_url=site) as client:
            order = client.post(
                "/api/v1/billing/checkout", headers={"X-Api-Key": key}, json={"pack": "starter"}
            )
            assert order.status_code == 503, order.text
            assert order.json()["error"]["code"] == "payments_unavailable"
            assert credits_of(client, key)["available"] == 0
    finally:
        ctx.close()
    # An operator's explicit choice stands (a public demo), and a local site keeps the sandbox.
    assert Settings(base_url=site, payment_provider="sandbox").payment_provider == "sandbox"
    assert Settings(base_url="http://127.0.0.1:8000").payment_provider == "sandbox"


def test_purchase_idempotency_key(client: TestClient, ctx: Context) -> None:
    key = make_api_key(ctx, make_user(ctx, credits=0))
    headers = {"X-Api-Key": key, "Idempotency-Key": "buy-1"}
    first = client.post("/api/v1/billing/checkout", headers=headers, json={"pack": "pro"})
    again = client.post("/api/v1/billing/checkout", headers=headers, json={"pack": "pro"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/api/v1/billing/checkout", headers=headers, json={"pack": "starter"})
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    unknown = client.post(
        "/api/v1/billing/checkout", headers={"X-Api-Key": key}, json={"pack": "gold"}
    )
    assert unknown.status_code == 404


def _checkout_completed(
    order_id: str, amount: int, event_id: str = "evt_1", *, session: str | None = None
) -> bytes:
    """Stripe's event for the order's own checkout session (the test API's `cs_test_` + id)."""
    return json.dumps(
        {
            "id": event_id,
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": session or f"cs_test_{order_id}",
                    "client_reference_id": order_id,
                    "payment_status": "paid",
                    "payment_intent": f"pi_{order_id}",
                    "amount_total": amount,
                    "currency": "usd",
                }
            },
        }
    ).encode()


def _pending_order(client: TestClient, key: str) -> dict:  # type: ignore[type-arg]
    """An order for the standard pack (200 credits, 14.99 USD), with Stripe under stripe_ctx."""
    answer = client.post(
        "/api/v1/billing/checkout", headers={"X-Api-Key": key}, json={"pack": "standard"}
    )
    assert answer.status_code == 201, answer.text
    order: dict = answer.json()  # type: ignore[type-arg]
    return order


def test_stripe_webhook_grants_once_and_refuses_bad_signatures(
    client: TestClient, stripe_ctx: Context, clock: TestClock
) -> None:
    key = make_api_key(stripe_ctx, make_user(stripe_ctx, credits=0))
    order = _pending_order(client, key)
    payload = _checkout_completed(order["id"], 1499)
    now = int(clock.now.timestamp())

    forged = client.post(
        "/api/v1/billing/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_stripe_payload(payload, "wrong", now)},
    )
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "invalid_signature"
    stale = client.post(
        "/api/v1/billing/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign_stripe_payload(payload, SECRET, now - 301)},
    )
    assert stale.status_code == 400
    assert credits_of(client, key)["available"] == 0

    signed = {"Stripe-Signature": sign_stripe_payload(payload, SECRET, now)}
    first = client.post("/api/v1/billing/webhooks/stripe", content=payload, headers=signed)
    assert first.status_code == 200 and first.json() == {"received": "granted"}
    replay = client.post("/api/v1/billing/webhooks/stripe", content=payload, headers=signed)
    assert replay.json() == {"received": "duplicate"}
    again = _checkout_completed(order["id"], 1499, event_id="evt_2")
    second_event = client.post(
        "/api/v1/billing/webhooks/stripe",
        content=again,
        headers={"Stripe-Signature": sign_stripe_payload(again, SECRET, now)},
    )
    assert second_event.json() == {"received": "already_paid"}
    assert credits_of(client, key)["available"] == 200


def test_stripe_checkout_names_the_pack_in_the_buyer_s_language(
    client: TestClient, stripe_ctx: Context, stripe_sessions: list[dict[str, list[str]]]
) -> None:
    # Stripe's page shows the line item we name and speaks the locale we give it: a Chinese
    # buyer read "Standard (200 credits)" on an English page.
    key = make_api_key(stripe_ctx, make_user(stripe_ctx, credits=0))
    for language in ("zh-CN", "en"):
        answer = client.post(
            "/api/v1/billing/checkout",
            headers={"X-Api-Key": key, "Accept-Language": language},
            json={"pack": "standard"},
        )
        assert answer.status_code == 201, answer.text
    named = [
        (form["line_items[0][price_data][product_data][name]"][0], form["locale"][0])
        for form in stripe_sessions
    ]
    chinese = "标准包（200 积分）"  # noqa: RUF001 (Chinese text takes full-width brackets)
    assert named == [(chinese, "zh"), ("Standard (200 credits)", "en")]
    packs = client.get("/api/v1/billing/packs", headers={"Accept-Language": "zh-CN"}).json()
    assert "Standard" in {pack["name"] for pack in packs}  # the API's data stays as stored


def test_stripe_webhook_with_wrong_amount_grants_nothing(
    client: TestClient, stripe_ctx: Context, clock: TestClock
) -> None:
    key = make_api_key(stripe_ctx, make_user(stripe_ctx, credits=0))
    order = _pending_order(client, key)
    payload = _checkout_completed(order["id"], 1)
    headers = {"Stripe-Signature": sign_stripe_payload(payload, SECRET, int(clock.now.timestamp()))}
    answer = client.post("/api/v1/billing/webhooks/stripe", content=payload, headers=headers)
    assert answer.json() == {"received": "amount_mismatch"}
    assert credits_of(client, key)["available"] == 0
    orders = client.get("/api/v1/billing/orders", headers={"X-Api-Key": key}).json()
    assert orders[0]["status"] == "disputed"


def test_a_mismatched_event_after_payment_leaves_the_paid_order_paid(
    client: TestClient, stripe_ctx: Context, clock: TestClock
) -> None:
    key = make_api_key(stripe_ctx, make_user(stripe_ctx, credits=0))
    order = _pending_order(client, key)
    now = int(clock.now.timestamp())
    for payload, outcome in (
        (_checkout_completed(order["id"], 1499, event_id="evt_1"), "granted"),
        (_checkout_completed(order["id"], 1, event_id="evt_2"), "amount_mismatch"),
    ):
        headers = {"Stripe-Signature": sign_stripe_payload(payload, SECRET, now)}
        answer = client.post("/api/v1/billing/webhooks/stripe", content=payload, headers=headers)
        assert answer.json() == {"received": outcome}
    orders = client.get("/api/v1/billing/orders", headers={"X-Api-Key": key}).json()
    assert orders[0]["status"] == "paid"
    assert credits_of(client, key)["available"] == 200


def test_paid_lot_expires_after_the_configured_period(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    key = make_api_key(ctx, make_user(ctx, credits=0))
    order = _pending_order(client, key)
    from removeany.accounts import repository as accounts_repo
    from removeany.billing import service as billing
    from removeany.maintenance import run_sweeps

    with ctx.db.transaction() as s:
        user = accounts_repo.user_by_email(s, "ada@example.com")
        assert user is not None
        billing.sandbox_pay(
            s, user, order["id"], now=clock.now, credit_days=ctx.settings.paid_credit_days
        )
    clock.now += timedelta(days=360)
    report = run_sweeps(ctx)
    assert report.expiry_warnings == 1 and report.expired_credits == 0
    assert credits_of(client, key)["expiring_soon"][0]["remaining"] == 200
    mails = list(ctx.settings.outbox_dir.glob("*.eml"))  # (sent mail is kept for a day)
    assert any(b"expire soon" in m.read_bytes() for m in mails)
    clock.now += timedelta(days=5, seconds=1)
    assert run_sweeps(ctx).expired_credits == 200
    view = credits_of(client, key)
    assert view["available"] == 0 and view["entries"][0]["kind"] == "expire"


def test_account_deletion_erases_the_buyer_from_stored_payment_events(
    client: TestClient, stripe_ctx: Context, clock: TestClock
) -> None:
    """Stripe's checkout session names the buyer (email, name, address): an erased account's
    events keep their id and order, not the payload."""
    from sqlalchemy import select

    from removeany.billing.models import Order, PaymentEvent

    user = make_user(stripe_ctx, credits=0)
    key = make_api_key(stripe_ctx, user)
    order = _pending_order(client, key)
    event = json.loads(_checkout_completed(order["id"], 1499))
    event["data"]["object"]["customer_details"] = {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "address": {"line1": "12 St James's Square"},
    }
    payload = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_stripe_payload(payload, SECRET, int(clock.now.timestamp()))}
    answer = client.post("/api/v1/billing/webhooks/stripe", content=payload, headers=headers)
    assert answer.json() == {"received": "granted"}
    deleted = client.post(
        "/api/v1/account/delete",
        headers={"X-Api-Key": key},
        json={"current_password": "correct horse battery"},
    )
    assert deleted.status_code == 200, deleted.text
    with stripe_ctx.db.transaction() as s:
        (stored,) = s.scalars(select(PaymentEvent)).all()
        assert stored.event_id == "evt_1" and stored.order_id == order["id"]
        assert "Ada" not in stored.payload and "ada@example.com" not in stored.payload
        paid = s.get(Order, order["id"])
        assert paid is not None and paid.status == "paid" and paid.amount_cents == 1499


def test_a_payment_after_the_account_was_erased_grants_nothing_and_awaits_a_refund(
    client: TestClient, stripe_ctx: Context, clock: TestClock
) -> None:
    """The buyer deleted their account with a checkout still open, then paid: credits granted
    to an erased account are lost to everyone, so the order is left 'Under review' for the
    operator to refund, and the event keeps no copy of the buyer's details."""
    from sqlalchemy import select

    from removeany.billing.models import Order, PaymentEvent
    from removeany.credits.models import CreditLot

    user = make_user(stripe_ctx, credits=0)
    key = make_api_key(stripe_ctx, user)
    order = _pending_order(client, key)
    deleted = client.post(
        "/api/v1/account/delete",
        headers={"X-Api-Key": key},
        json={"current_password": "correct horse battery"},
    )
    assert deleted.status_code == 200, deleted.text
    event = json.loads(_checkout_completed(order["id"], 1499))
    event["data"]["object"]["customer_details"] = {"email": "ada@example.com"}
    payload = json.dumps(event).encode()
    headers = {"Stripe-Signature": sign_stripe_payload(payload, SECRET, int(clock.now.timestamp()))}
    answer = client.post("/api/v1/billing/webhooks/stripe", content=payload, headers=headers)
    assert answer.json() == {"received": "account_deleted"}
    with stripe_ctx.db.transaction() as s:
        stored = s.get(Order, order["id"])
        assert stored is not None and stored.status == "disputed" and stored.lot_id is None
        assert s.scalars(select(CreditLot).where(CreditLot.user_id == user.id)).all() == []
        (recorded,) = s.scalars(select(PaymentEvent)).all()
        assert "ada@example.com" not in recorded.payload
