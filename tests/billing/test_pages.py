"""The credits and billing pages over the real app and database: the credits page (lots,
history, expiry warning), buying a pack through the sandbox checkout, double submits, other
people's orders, cancelling, and promo codes. Forms carry CSRF tokens like every other page."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from fastapi.testclient import TestClient

from removeany import i18n
from removeany.accounts import repository as accounts_repo
from removeany.accounts.models import User
from removeany.billing import service as billing
from removeany.context import Context
from removeany.credits import free
from removeany.credits import service as ledger
from removeany.credits.free import PROMO_ATTEMPTS, PROMO_WINDOW
from removeany.maintenance import run_sweeps
from tests.conftest import TestClock, eval_image
from tests.helpers import make_api_key, make_user

PASSWORD = "correct horse battery"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PACK_FORM_RE = re.compile(
    r'name="pack" value="(?P<pack>[\w-]+)">\s*'
    r'<input type="hidden" name="idempotency_key" value="(?P<key>[^"]+)">'
)


def form_token(page: str) -> str:
    found = TOKEN_RE.search(page)
    assert found, "the page has no form with a CSRF token"
    return html.unescape(found.group(1))


def pack_key(page: str, pack: str) -> str:
    """The idempotency key rendered in the Buy form of `pack`."""
    keys = {m["pack"]: html.unescape(m["key"]) for m in PACK_FORM_RE.finditer(page)}
    assert pack in keys, f"no Buy form for {pack}: {sorted(keys)}"
    return keys[pack]


def text_of(page: str) -> str:
    """The page's visible text, roughly: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def web_login(client: TestClient, email: str = "ada@example.com") -> None:
    client.cookies.clear()
    token = form_token(client.get("/login").text)
    r = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/credits"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/credits", r.text


def available(ctx: Context, email: str = "ada@example.com") -> int:
    with ctx.db.transaction() as s:
        user = accounts_repo.user_by_email(s, email)
        assert user is not None
        return ledger.balance(s, user.id, ctx.now()).available


def orders_of(ctx: Context, email: str = "ada@example.com") -> list[tuple[str, str]]:
    with ctx.db.transaction() as s:
        user = accounts_repo.user_by_email(s, email)
        assert user is not None
        return [(o.id, o.status) for o in billing.orders(s, user)]


def buy(client: TestClient, pack: str = "starter", key: str | None = None) -> str:
    """Press Buy on the credits page; returns the checkout URL it redirects to."""
    page = client.get("/credits").text
    r = client.post(
        "/billing/checkout",
        data={
            "pack": pack,
            "idempotency_key": key or pack_key(page, pack),
            "csrf_token": form_token(page),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    location: str = r.headers["location"]
    return location


def test_credits_page_needs_sign_in(client: TestClient, ctx: Context) -> None:
    r = client.get("/credits", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/credits"
    r = client.get("/billing/sandbox/abc", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = client.post("/billing/checkout", data={"pack": "starter"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/credits"


def test_credits_page_shows_lots_history_and_the_expiry_warning(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    ctx.clock = clock
    user = make_user(ctx, credits=10)  # an admin lot that never expires
    with ctx.db.transaction() as s:
        ledger.grant(
            s,
            user.id,
            3,
            source="signup",
            now=clock.now,
            expires_at=clock.now + timedelta(days=5),
            reference="signup",
        )
    # A real job, so the history links to it.
    key = make_api_key(ctx, user)
    photo = eval_image("object", "alphamatting_GT07").read_bytes()
    job = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": key},
        data={"wait": "true", "size": "preview"},
        files={"file": ("a.png", photo)},
    ).json()
    assert job["status"] == "succeeded", job
    web_login(client)

    page = client.get("/credits")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Available: 12 credits" in text
    assert 'href="/credits"' in page.text and "Credits" in text  # the nav link
    warning = re.search(r'id="expiry-warning">([^<]+)<', page.text)
    assert warning, "no expiry warning"
    assert "2 of your credits expire within 7 days, the first on 2026-01-06" in html.unescape(
        warning.group(1)
    )
    lots = text_of(page.text.split('id="lots"')[1].split("</table>")[0])
    assert "Sign-up gift" in lots and "Admin" in lots and "Expires soon" in lots
    assert "2027-01-01 12:00 UTC" in lots and "2026-01-06 12:00 UTC" in lots
    history = page.text.split('id="history"')[1].split("</table>")[0]
    assert f'href="/jobs/{job["id"]}"' in history
    words = text_of(history)
    assert "Free credits for signing up" in words and "Held while a job runs" in words
    assert "Held credits spent on a finished job" in words and "-1" in words
    # Spent from the lot that expires first.
    (reserve,) = [text_of(row) for row in history.split("<tr")[1:] if "Held while" in row]
    assert "Sign-up gift #" in reserve and "2026-01-06 12:00 UTC" in reserve

    # The workspace offers the credits page, and the pill links there too.
    workspace = client.get("/app").text
    assert 'class="credit-pill" href="/credits"' in workspace
    assert "Buy credits" in workspace

    clock.now += timedelta(days=6)
    assert run_sweeps(ctx).expired_credits == 2
    page = client.get("/credits")
    text = text_of(page.text)
    assert "Available: 10 credits" in text
    assert 'id="expiry-warning"' not in page.text
    history = text_of(page.text.split('id="history"')[1].split("</table>")[0])
    newest = history.split("Lot expires", 1)[1].strip()
    assert newest.startswith("2026-01-07 12:00 UTC Unused credits expired -2 — Sign-up gift #"), (
        history
    )


def test_buy_a_pack_through_the_sandbox_checkout(client: TestClient, ctx: Context) -> None:
    make_user(ctx, credits=10)
    web_login(client)
    page = client.get("/credits").text
    assert "Starter" in page and "4.99 USD" in page and "no real money is charged" in page
    checkout = buy(client, "starter")
    ((order_id, status),) = orders_of(ctx)
    assert checkout == f"/billing/sandbox/{order_id}" and status == "pending"

    sandbox = client.get(checkout)
    assert sandbox.status_code == 200
    text = text_of(sandbox.text)
    assert "Test mode — no real money is charged" in text
    assert "Starter" in text and "50" in text and "4.99 USD" in text
    assert "Pay (test)" in text and "Cancel" in text
    assert available(ctx) == 10

    r = client.post(
        f"{checkout}/pay", data={"csrf_token": form_token(sandbox.text)}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/credits?paid={order_id}"
    page = client.get(r.headers["location"])
    text = text_of(page.text)
    assert "Payment received: 50 credits were added to your balance." in text
    assert "Available: 60 credits" in text
    orders = text_of(page.text.split('id="orders"')[1].split("</table>")[0])
    assert "Starter 50 4.99 USD Paid Receipt" in orders
    assert f'href="/billing/orders/{order_id}"' in page.text
    lots = text_of(page.text.split('id="lots"')[1].split("</table>")[0])
    assert "Paid" in lots
    assert orders_of(ctx) == [(order_id, "paid")]

    receipt = client.get(f"/billing/orders/{order_id}")
    assert receipt.status_code == 200
    text = text_of(receipt.text)
    assert "Receipt" in text and "Paid" in text and "4.99 USD" in text and order_id in text

    # Paying the same order again (a second tab, the back button) grants nothing more.
    again = client.post(
        f"{checkout}/pay", data={"csrf_token": form_token(sandbox.text)}, follow_redirects=False
    )
    assert again.status_code == 303
    assert available(ctx) == 60
    assert "This order is paid" in client.get(checkout).text


def test_a_double_submitted_buy_form_creates_one_order(client: TestClient, ctx: Context) -> None:
    make_user(ctx, credits=0)
    web_login(client)
    page = client.get("/credits").text
    key = pack_key(page, "pro")
    first = buy(client, "pro", key)
    second = buy(client, "pro", key)
    assert first == second
    assert len(orders_of(ctx)) == 1
    # Each render of the page is a new form, so buying again later is a new order.
    fresh = client.get("/credits").text
    assert pack_key(fresh, "pro") != key
    assert buy(client, "pro") != first
    assert len(orders_of(ctx)) == 2
    # The same key for another pack is refused with a sentence, and creates nothing.
    r = client.post(
        "/billing/checkout",
        data={"pack": "starter", "idempotency_key": key, "csrf_token": form_token(fresh)},
    )
    assert r.status_code == 409 and "already used for a different purchase" in r.text
    assert len(orders_of(ctx)) == 2
    # Without the CSRF token nothing is bought.
    r = client.post("/billing/checkout", data={"pack": "pro", "idempotency_key": "x-1"})
    assert r.status_code == 403 and len(orders_of(ctx)) == 2
    unknown = client.post(
        "/billing/checkout",
        data={"pack": "gold", "idempotency_key": "x-2", "csrf_token": form_token(fresh)},
    )
    assert unknown.status_code == 404 and "no credit pack" in html.unescape(unknown.text)


def test_someone_elses_order_is_not_found(client: TestClient, ctx: Context) -> None:
    make_user(ctx, credits=0)
    make_user(ctx, "eve@example.com", credits=0)
    web_login(client)
    checkout = buy(client)
    ((order_id, _),) = orders_of(ctx)

    web_login(client, "eve@example.com")
    token = form_token(client.get("/credits").text)
    assert client.get(checkout).status_code == 404
    assert client.get(f"/billing/orders/{order_id}").status_code == 404
    assert client.post(f"{checkout}/pay", data={"csrf_token": token}).status_code == 404
    assert client.post(f"{checkout}/cancel", data={"csrf_token": token}).status_code == 404
    assert available(ctx) == 0 and available(ctx, "eve@example.com") == 0
    assert orders_of(ctx) == [(order_id, "pending")]
    assert client.get("/billing/sandbox/not-an-order").status_code == 404


def test_cancelled_checkout_grants_nothing(client: TestClient, ctx: Context) -> None:
    make_user(ctx, credits=0)
    web_login(client)
    checkout = buy(client, "standard")
    ((order_id, _),) = orders_of(ctx)
    token = form_token(client.get(checkout).text)
    r = client.post(f"{checkout}/cancel", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/credits?cancelled={order_id}"
    text = text_of(client.get(r.headers["location"]).text)
    assert "The checkout was cancelled. Nothing was charged." in text
    assert "Standard 200 14.99 USD Cancelled" in text
    assert available(ctx) == 0 and orders_of(ctx) == [(order_id, "cancelled")]
    # A cancelled order cannot be paid afterwards.
    r = client.post(f"{checkout}/pay", data={"csrf_token": token})
    assert r.status_code == 409 and "start a new purchase" in r.text
    assert available(ctx) == 0
    assert "This order is cancelled" in client.get(checkout).text


def test_sandbox_checkout_exists_only_with_the_sandbox_provider(
    client: TestClient, ctx: Context
) -> None:
    make_user(ctx, credits=0)
    web_login(client)
    checkout = buy(client)
    token = form_token(client.get(checkout).text)
    ctx.settings.payment_provider = "stripe"
    assert client.get(checkout).status_code == 404
    assert client.post(f"{checkout}/pay", data={"csrf_token": token}).status_code == 404
    assert available(ctx) == 0
    # With Stripe not configured, buying says so instead of failing obscurely.
    page = client.get("/credits").text
    assert "no real money" not in page
    r = client.post(
        "/billing/checkout",
        data={"pack": "starter", "idempotency_key": "k-1", "csrf_token": form_token(page)},
    )
    assert r.status_code == 503 and "Payments are not configured" in r.text


def _user_with_promo(ctx: Context, clock: TestClock, code: str, credits: int) -> User:
    """A user with no credits, and a promo code worth ``credits`` for 30 days."""
    ctx.clock = clock
    user = make_user(ctx, credits=0)
    with ctx.db.transaction() as s:
        free.create_promo(
            s,
            code,
            credits=credits,
            max_uses=5,
            credit_days=30,
            redeem_by=None,
            now=clock.now,
            admin_id=None,
        )
    return user


def test_redeem_a_promo_code_with_the_form(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    _user_with_promo(ctx, clock, "WELCOME", 7)
    web_login(client)
    token = form_token(client.get("/credits").text)
    posted = client.post(
        "/credits/redeem",
        data={"code": " welcome ", "csrf_token": token},
        follow_redirects=False,
    )
    # A redirect: reloading the page it lands on does not send the code again.
    assert posted.status_code == 303
    assert re.fullmatch(r"/credits\?redeemed=\d+#promo-title", posted.headers["location"])
    for _reload in range(2):
        r = client.get(posted.headers["location"])
        assert r.status_code == 200
        text = text_of(r.text)
        assert "The promo code added 7 credits. They expire on 2026-01-31." in text
        assert "Available: 7 credits" in text and "Promo code WELCOME" in text
        assert "already redeemed" not in text
    again = client.post("/credits/redeem", data={"code": "WELCOME", "csrf_token": token})
    assert again.status_code == 409
    assert "You have already redeemed this promo code." in text_of(again.text)
    missing = client.post("/credits/redeem", data={"code": "NOPE", "csrf_token": token})
    assert missing.status_code == 404
    assert "There is no such promo code. Check the spelling." in text_of(missing.text)
    assert 'value="NOPE"' in missing.text  # the form keeps what was typed
    # ... and a screen reader on the field hears why it was refused.
    field = re.search(r'<input id="promo-code"[^>]*>', missing.text)
    assert field is not None and 'aria-describedby="promo-error"' in field.group(0)
    assert (
        'aria-invalid="true"' in field.group(0) and 'role="alert" id="promo-error"' in missing.text
    )
    empty = client.post("/credits/redeem", data={"code": "", "csrf_token": token})
    assert empty.status_code == 400 and "Enter a promo code." in empty.text
    forged = client.post("/credits/redeem", data={"code": "WELCOME"})
    assert forged.status_code == 403
    assert available(ctx) == 7


def test_promo_codes_cannot_be_guessed_quickly(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    """Promo codes are names an admin chose (WELCOME, LAUNCH50): any signed-in person or API
    key could try code after code, each wrong one answered at once with 404."""
    key = {"X-Api-Key": make_api_key(ctx, _user_with_promo(ctx, clock, "SPRING", 5))}
    for guess in range(PROMO_ATTEMPTS):
        wrong = client.post("/api/v1/credits/redeem", json={"code": f"GUESS{guess}"}, headers=key)
        assert wrong.status_code == 404
    refused = client.post("/api/v1/credits/redeem", json={"code": "SPRING"}, headers=key)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_attempts"
    web_login(client)  # the form counts against the same person
    token = form_token(client.get("/credits").text)
    page = client.post("/credits/redeem", data={"code": "SPRING", "csrf_token": token})
    assert page.status_code == 429 and "Too many promo codes." in text_of(page.text)
    assert available(ctx) == 0
    clock.now += PROMO_WINDOW
    right = client.post("/api/v1/credits/redeem", json={"code": "SPRING"}, headers=key)
    assert right.status_code == 201 and available(ctx) == 5


def test_promo_errors_and_single_credits_in_chinese(
    client: TestClient, ctx: Context, clock: TestClock
) -> None:
    """The promo form's refusals in the page's language; one credit is "1 credit"."""
    _user_with_promo(ctx, clock, "ONE", 1)
    web_login(client)
    token = form_token(client.get("/credits").text)
    posted = client.post("/credits/redeem", data={"code": "ONE", "csrf_token": token})
    redeemed = text_of(posted.text)
    assert "The promo code added 1 credit. It expires on 2026-01-31." in redeemed
    assert "Available: 1 credit" in redeemed and "1 credits" not in redeemed
    client.headers["Accept-Language"] = "zh-CN"

    def zh(text: str) -> str:
        translated = i18n.translate(text, "zh-CN")
        assert translated != text
        return translated

    missing = client.post("/credits/redeem", data={"code": "NOPE", "csrf_token": token})
    assert missing.status_code == 404
    assert zh("There is no such promo code. Check the spelling.") in text_of(missing.text)
    again = client.post("/credits/redeem", data={"code": "ONE", "csrf_token": token})
    assert again.status_code == 409
    assert zh("You have already redeemed this promo code.") in text_of(again.text)


def test_pack_names_in_chinese(client: TestClient, ctx: Context) -> None:
    """The built-in packs are stored (and answered by the API) by their English names; the
    Chinese credits page, test checkout, order list and receipt name them in Chinese."""
    make_user(ctx, credits=10)
    web_login(client)
    client.headers["Accept-Language"] = "zh-CN"
    names = {en: i18n.translate(en, "zh-CN") for en in ("Starter", "Standard", "Pro")}
    assert all(zh != en for en, zh in names.items())
    page = client.get("/credits").text
    checkout = buy(client, "starter")
    sandbox = client.get(checkout).text
    pay = client.post(
        f"{checkout}/pay", data={"csrf_token": form_token(sandbox)}, follow_redirects=False
    )
    paid = client.get(pay.headers["location"]).text
    receipt = client.get(f"/billing/orders/{orders_of(ctx)[0][0]}").text
    for shown in (page, sandbox, paid, receipt):
        for english in names:
            assert not re.search(rf"\b{english}\b", text_of(shown))
    assert all(zh in text_of(page) for zh in names.values())
    assert names["Starter"] in text_of(sandbox) and names["Starter"] in text_of(receipt)
    orders = text_of(paid.split('id="orders"')[1].split("</table>")[0])
    assert f"{names['Starter']} 50 4.99 USD" in orders
    # What programs read stays as stored.
    packs = client.get("/api/v1/billing/packs").json()
    assert [p["name"] for p in packs] == ["Starter", "Standard", "Pro"]
