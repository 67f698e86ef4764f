"""Payment providers behind one interface: a local sandbox (clearly marked test) and Stripe."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from removeany.errors import DomainError

SIGNATURE_TOLERANCE_SECONDS = 300


class PaymentError(DomainError):
    status_code = 502
    code = "payment_provider_error"


class InvalidSignature(DomainError):
    status_code = 400
    code = "invalid_signature"


@dataclass(frozen=True)
class Checkout:
    url: str
    provider_ref: str


@dataclass(frozen=True)
class CheckoutRequest:
    order_id: str
    product_name: str  # what is bought, in the buyer's language: "Starter (50 credits)"
    locale: str  # the buyer's language (i18n.LOCALES), for the provider's own page
    amount_cents: int
    currency: str
    customer_email: str
    success_url: str
    cancel_url: str


class PaymentProvider(Protocol):
    name: str

    def start_checkout(self, request: CheckoutRequest) -> Checkout: ...


class SandboxProvider:
    """Pays instantly on a local page; no money moves. For the embedded default and tests."""

    name = "sandbox"

    def start_checkout(self, request: CheckoutRequest) -> Checkout:
        return Checkout(
            url=f"/billing/sandbox/{request.order_id}", provider_ref=f"sandbox_{request.order_id}"
        )


# Our languages as Stripe Checkout's `locale` names them ("auto": the buyer's browser).
STRIPE_LOCALES = {"en": "en", "zh-CN": "zh"}


class StripeProvider:
    """Stripe Checkout Sessions; credits are granted only from the signed webhook."""

    name = "stripe"

    def __init__(self, secret_key: str, api_base: str = "https://api.stripe.com"):
        self.secret_key = secret_key
        self.api_base = api_base.rstrip("/")

    def start_checkout(self, request: CheckoutRequest) -> Checkout:
        form = {
            "mode": "payment",
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.order_id,
            "customer_email": request.customer_email,
            "metadata[order_id]": request.order_id,
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": request.currency,
            "line_items[0][price_data][unit_amount]": str(request.amount_cents),
            "line_items[0][price_data][product_data][name]": request.product_name,
            "locale": STRIPE_LOCALES.get(request.locale, "auto"),
        }
        req = urllib.request.Request(
            f"{self.api_base}/v1/checkout/sessions",
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Authorization": f"Bearer {self.secret_key}",
                "Idempotency-Key": f"checkout-{request.order_id}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                body: dict[str, Any] = json.loads(response.read())
        except OSError as exc:
            raise PaymentError(
                "The payment provider could not be reached. Try again in a few minutes."
            ) from exc
        return Checkout(url=str(body["url"]), provider_ref=str(body["id"]))


def verify_stripe_signature(
    payload: bytes, header: str, secret: str, *, now: datetime
) -> dict[str, Any]:
    """Check Stripe's `Stripe-Signature` (HMAC-SHA256 of "t.payload", 300 s tolerance) and
    return the parsed event."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("The Stripe-Signature header is missing or malformed.")
    if abs(now.timestamp() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidSignature("The webhook's timestamp is outside the 300-second tolerance.")
    signed = f"{timestamp}.".encode() + payload
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, sig) for sig in signatures):
        raise InvalidSignature("The webhook signature does not match the signing secret.")
    try:
        event: dict[str, Any] = json.loads(payload)
    except ValueError:
        raise InvalidSignature("The webhook body is not JSON.") from None
    return event


def sign_stripe_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """The header Stripe would send; used by operators' tooling and our tests."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"
