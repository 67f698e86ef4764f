"""Stripe refunds and chargebacks take back an order's unspent credits: signed events over real
HTTP, matched only to the Stripe order whose payment intent they name, once per refund."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from removeany import i18n
from removeany.accounts.models import User
from removeany.billing.models import Order
from removeany.billing.providers import sign_stripe_payload
from removeany.context import Context
from removeany.credits import service as ledger
from removeany.credits.models import CreditEntry
from tests.billing.conftest import WEBHOOK_SECRET
from tests.billing.test_pages import available, text_of, web_login
from tests.helpers import make_api_key, make_user

PRICE = 1499  # the standard pack: 200 credits


def post_event(client: TestClient, kind: str, obj: dict[str, Any], event_id: str) -> str:
    payload = json.dumps({"id": event_id, "type": kind, "data": {"object": obj}}).encode()
    signature = sign_stripe_payload(payload, WEBHOOK_SECRET, int(time.time()))
    answer = client.post(
        "/api/v1/billing/webhooks/stripe", content=payload, headers={"Stripe-Signature": signature}
    )
    assert answer.status_code == 200, answer.text
    received: str = answer.json()["received"]
    return received


def paid_order(client: TestClient, ctx: Context) -> str:
    """Ada buys the standard pack through Stripe; the completed session grants 200 credits."""
    key = make_api_key(ctx, make_user(ctx, credits=0))
    order = client.post(
        "/api/v1/billing/checkout", headers={"X-Api-Key": key}, json={"pack": "standard"}
    ).json()
    assert order["provider"] == "stripe"
    session = {
        "id": f"cs_test_{order['id']}",
        "client_reference_id": order["id"],
        "payment_status": "paid",
        "payment_intent": f"pi_{order['id']}",
        "amount_total": PRICE,
        "currency": "usd",
    }
    assert post_event(client, "checkout.session.completed", session, "evt_paid") == "granted"
    assert available(ctx) == 200
    order_id: str = order["id"]
    return order_id


def charge(order_id: str, refunded: int) -> dict[str, Any]:
    return {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": f"pi_{order_id}",
        "amount": PRICE,
        "amount_refunded": refunded,
        "refunded": refunded == PRICE,
        "currency": "usd",
        "billing_details": {"email": "ada@example.com", "name": "Ada Lovelace"},
    }


def spend(ctx: Context, credits: int, job: str = "job:spent") -> None:
    with ctx.db.transaction() as s:
        user_id = s.scalars(select(Order.user_id)).one()
        ledger.reserve(s, user_id, credits, reference=job, now=ctx.now(), ttl=timedelta(hours=1))
        assert ledger.capture(s, user_id, reference=job, now=ctx.now()) == credits


def order_row(ctx: Context, order_id: str) -> Order:
    with ctx.db.transaction() as s:
        order = s.get(Order, order_id)
        assert order is not None
        s.expunge(order)
        return order


def kinds(ctx: Context) -> list[tuple[str, int]]:
    with ctx.db.transaction() as s:
        entries = s.scalars(select(CreditEntry).order_by(CreditEntry.id)).all()
        return [(e.kind, e.amount) for e in entries]


def test_a_full_refund_takes_back_what_is_left_once_and_shows_on_the_receipt(
    client: TestClient, stripe_ctx: Context
) -> None:
    ctx = stripe_ctx
    order_id = paid_order(client, ctx)
    spend(ctx, 50)
    with ctx.db.transaction() as s:  # credits from elsewhere are not the refund's
        user_id = s.scalars(select(Order.user_id)).one()
        ledger.grant(
            s, user_id, 5, source="admin", now=ctx.now(), expires_at=ctx.now() + timedelta(999)
        )

    assert post_event(client, "charge.refunded", charge(order_id, PRICE), "evt_r1") == "refunded"
    assert available(ctx) == 5  # the 150 left of the pack went back; 50 spent stay spent
    assert kinds(ctx)[-1] == ("refund", -150)
    order = order_row(ctx, order_id)
    assert order.status == "refunded" and order.refunded_cents == PRICE
    # A replay, and Stripe's next event about the same refund, take nothing more.
    assert post_event(client, "charge.refunded", charge(order_id, PRICE), "evt_r1") == "duplicate"
    again = post_event(client, "charge.refunded", charge(order_id, PRICE), "evt_r2")
    assert again == "already_refunded"
    assert available(ctx) == 5 and [k for k, _ in kinds(ctx)].count("refund") == 1
    # A late copy of the checkout event grants nothing again.
    late = {
        "id": f"cs_test_{order_id}",
        "client_reference_id": order_id,
        "payment_status": "paid",
        "payment_intent": f"pi_{order_id}",
        "amount_total": PRICE,
        "currency": "usd",
    }
    assert post_event(client, "checkout.session.completed", late, "evt_paid_2") == "order_closed"
    assert available(ctx) == 5

    web_login(client)
    receipt = text_of(client.get(f"/billing/orders/{order_id}").text)
    assert "Refunded" in receipt and "14.99 USD" in receipt
    assert "credits already spent stay spent" in receipt
    credits = text_of(client.get("/credits").text)
    assert "Order refunded: its unspent credits were taken back -150" in credits
    client.headers["Accept-Language"] = "zh-CN"
    zh_receipt = text_of(client.get(f"/billing/orders/{order_id}").text)
    assert i18n.translate("Refunded", "zh-CN") in zh_receipt
    zh_credits = text_of(client.get("/credits").text)
    assert i18n.translate("Order refunded: its unspent credits were taken back", "zh-CN") in (
        zh_credits
    )


def test_partial_refunds_take_back_their_share_and_never_go_below_zero(
    client: TestClient, stripe_ctx: Context
) -> None:
    ctx = stripe_ctx
    order_id = paid_order(client, ctx)
    # Half the price back: the 100 whole credits 7.50 USD paid for go.
    assert post_event(client, "charge.refunded", charge(order_id, 750), "evt_r1") == "refunded"
    assert available(ctx) == 100
    assert order_row(ctx, order_id).status == "partly_refunded"
    spend(ctx, 90)
    # The rest refunded: what that part paid for is 100, but only 10 are left to take back.
    assert post_event(client, "charge.refunded", charge(order_id, PRICE), "evt_r2") == "refunded"
    assert available(ctx) == 0
    assert [e for e in kinds(ctx) if e[0] == "refund"] == [("refund", -100), ("refund", -10)]
    order = order_row(ctx, order_id)
    assert order.status == "refunded" and order.refunded_cents == PRICE
    web_login(client)
    assert "Refunded 14.99 USD" in text_of(client.get(f"/billing/orders/{order_id}").text)


def test_a_chargeback_takes_back_the_unspent_credits_and_puts_the_order_under_review(
    client: TestClient, stripe_ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = stripe_ctx
    order_id = paid_order(client, ctx)
    spend(ctx, 30)
    dispute = {
        "id": "dp_1",
        "object": "dispute",
        "charge": "ch_1",
        "payment_intent": f"pi_{order_id}",
        "amount": PRICE,
        "currency": "usd",
        "reason": "fraudulent",
        "status": "needs_response",
    }
    with caplog.at_level(logging.WARNING, logger="removeany.billing.service"):
        assert post_event(client, "charge.dispute.created", dispute, "evt_d1") == "disputed"
    assert any(
        order_id in r.getMessage() and "chargeback" in r.getMessage() for r in caplog.records
    )
    assert available(ctx) == 0 and kinds(ctx)[-1] == ("chargeback", -170)
    order = order_row(ctx, order_id)
    assert order.status == "disputed" and order.review_reason == "chargeback"
    assert post_event(client, "charge.dispute.created", dispute, "evt_d2") == "already_disputed"
    assert [k for k, _ in kinds(ctx)].count("chargeback") == 1

    web_login(client)
    receipt = text_of(client.get(f"/billing/orders/{order_id}").text)
    assert "Under review" in receipt and "disputed with your bank" in receipt
    history = text_of(client.get("/credits").text)
    assert "Payment disputed with your bank: the order's unspent credits were taken back" in (
        history
    )


def test_events_only_reach_the_stripe_order_they_name(
    client: TestClient, stripe_ctx: Context
) -> None:
    ctx = stripe_ctx
    order_id = paid_order(client, ctx)
    # Another payment intent, or none: no order.
    stray = charge("someone-else", PRICE)
    assert post_event(client, "charge.refunded", stray, "evt_x1") == "unknown_order"
    del stray["payment_intent"]
    assert post_event(client, "charge.refunded", stray, "evt_x2") == "unknown_order"
    assert available(ctx) == 200

    # A checkout event naming an order but another session grants nothing.
    make_user(ctx, "bob@example.com", credits=0)
    bob = make_api_key(ctx, make_user(ctx, "carol@example.com", credits=0))
    pending = client.post(
        "/api/v1/billing/checkout", headers={"X-Api-Key": bob}, json={"pack": "standard"}
    ).json()
    forged = {
        "id": f"cs_test_{order_id}",  # Ada's session, pointed at Carol's order
        "client_reference_id": pending["id"],
        "payment_status": "paid",
        "amount_total": PRICE,
        "currency": "usd",
    }
    assert post_event(client, "checkout.session.completed", forged, "evt_x3") == "unknown_order"
    # A sandbox order takes no Stripe event, even one naming its own reference.
    ctx.settings.payment_provider = "sandbox"
    sandbox = client.post(
        "/api/v1/billing/checkout", headers={"X-Api-Key": bob}, json={"pack": "starter"}
    ).json()
    ctx.settings.payment_provider = "stripe"
    assert sandbox["provider"] == "sandbox"
    for session in (f"sandbox_{sandbox['id']}", f"cs_test_{sandbox['id']}"):
        event = {**forged, "id": session, "client_reference_id": sandbox["id"]}
        assert post_event(client, "checkout.session.completed", event, session) == "unknown_order"
    with ctx.db.transaction() as s:
        statuses = {o.id: o.status for o in s.scalars(select(Order))}
    assert statuses == {order_id: "paid", pending["id"]: "pending", sandbox["id"]: "pending"}


def test_orders_under_review_are_listed_for_admins_and_logged(
    client: TestClient, stripe_ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """A chargeback, a payment of the wrong amount and a payment for an erased account each
    leave an order under review: the admin console lists them (user, amount, state, why) and
    the log warns as each one enters that state. Paid and refunded orders are not listed."""
    ctx = stripe_ctx
    disputed = paid_order(client, ctx)
    dispute = {"id": "dp_1", "payment_intent": f"pi_{disputed}", "amount": PRICE}
    reasons = {}
    with caplog.at_level(logging.WARNING, logger="removeany.billing.service"):
        assert post_event(client, "charge.dispute.created", dispute, "evt_d1") == "disputed"
        for email, price, outcome in (
            ("bob@example.com", 1, "amount_mismatch"),
            ("carol@example.com", PRICE, "account_deleted"),
            ("dan@example.com", PRICE, "granted"),
        ):
            key = make_api_key(ctx, make_user(ctx, email, credits=0))
            order = client.post(
                "/api/v1/billing/checkout", headers={"X-Api-Key": key}, json={"pack": "standard"}
            ).json()
            if outcome == "account_deleted":
                gone = client.post(
                    "/api/v1/account/delete",
                    headers={"X-Api-Key": key},
                    json={"current_password": "correct horse battery"},
                )
                assert gone.status_code == 200, gone.text
            session = {
                "id": f"cs_test_{order['id']}",
                "client_reference_id": order["id"],
                "payment_status": "paid",
                "payment_intent": f"pi_{order['id']}",
                "amount_total": price,
                "currency": "usd",
            }
            assert post_event(client, "checkout.session.completed", session, email) == outcome
            reasons[outcome] = order["id"]
        refunded_order = reasons["granted"]
        refund = charge(refunded_order, PRICE)
        assert post_event(client, "charge.refunded", refund, "evt_r") == "refunded"
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 3
    for order_id, why in (
        (disputed, "chargeback"),
        (reasons["amount_mismatch"], "amount_mismatch"),
        (reasons["account_deleted"], "account_deleted"),
    ):
        assert any(order_id in m and why in m and "14.99 USD" in m for m in warned), warned

    admin = make_user(ctx, "root@example.com", credits=0)
    with ctx.db.transaction() as s:
        row = s.get(User, admin.id)
        assert row is not None
        row.is_admin = True
    web_login(client, "root@example.com")
    page = client.get("/admin").text
    table = page.split('id="review-orders"', 1)[1].split("</table>", 1)[0]
    rows = {
        order_id: text_of(table.split(f'data-order="{order_id}"', 1)[1].split("</tr>", 1)[0])
        for order_id in (disputed, reasons["amount_mismatch"], reasons["account_deleted"])
    }
    assert refunded_order not in table
    assert "ada@example.com" in rows[disputed] and "Chargeback" in rows[disputed]
    assert "14.99 USD" in rows[disputed] and "Under review" in rows[disputed]
    assert "bob@example.com" in rows[reasons["amount_mismatch"]]
    assert "different amount" in rows[reasons["amount_mismatch"]]
    assert "deleted-" in rows[reasons["account_deleted"]]
    assert "Paid after the account was deleted" in rows[reasons["account_deleted"]]
    client.headers["Accept-Language"] = "zh-CN"
    zh = text_of(client.get("/admin").text)
    assert i18n.translate("Orders needing attention", "zh-CN") in zh
