"""Free credits: the signup grant (once per real mailbox, throttled per network), the optional
monthly allowance, and promo codes. Flushes, never commits."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from removeany.credits import service as ledger
from removeany.credits.models import CreditLot, PromoCode, PromoRedemption, SignupGrant
from removeany.errors import Conflict, DomainError, NotFound

DOTLESS_PROVIDERS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


# Promo codes are names an admin chose: guessing them must be slow. Attempts per user.
PROMO_ATTEMPTS = 10
PROMO_WINDOW = timedelta(hours=1)


def count_redemption_attempt(session: Session, user_id: int, *, now: datetime) -> None:
    """One more promo redemption attempt, refused with 429 `too_many_attempts` past the
    limit. The caller commits it whatever the code turns out to be."""
    from removeany.accounts import security  # accounts.service imports this module

    key = f"promo:user:{user_id}"
    security.throttle_check(
        session, key, limit=PROMO_ATTEMPTS, window=PROMO_WINDOW, now=now, what="promo codes"
    )
    security.throttle_hit(session, key, window=PROMO_WINDOW, now=now)


def mailbox_key(email: str) -> str:
    """The mailbox behind an address: case, plus-tags and (for Gmail) dots don't make a new one."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in DOTLESS_PROVIDERS:
        local = local.replace(".", "")
        domain = DOTLESS_PROVIDERS[domain]
    return f"{local}@{domain}"


def erased_key(key: str) -> str:
    """What stays of a mailbox key once its account is erased: enough to refuse the same
    mailbox a second grant, not the address."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def forget_signup(session: Session, user_id: int) -> None:
    """Erase the address and network of the user's signup grant (account deletion)."""
    for grant in session.scalars(select(SignupGrant).where(SignupGrant.user_id == user_id)):
        if not grant.email_key.startswith("sha256:"):
            grant.email_key = erased_key(grant.email_key)
        grant.ip = ""
    session.flush()


def forget_signup_networks(session: Session, *, now: datetime) -> int:
    """The network a signup came from counts against that network for a day (see
    grant_signup); after that it is forgotten (the retention sweep calls this)."""
    result = session.execute(
        update(SignupGrant)
        .where(SignupGrant.created_at < now - timedelta(days=1), SignupGrant.ip != "")
        .values(ip="")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def signup_granted(session: Session, user_id: int) -> bool:
    """Whether confirming the account brought the signup credits."""
    grant = select(SignupGrant.id).where(
        SignupGrant.user_id == user_id, SignupGrant.granted.is_(True)
    )
    return session.scalar(grant) is not None


def grant_signup(
    session: Session,
    user_id: int,
    email: str,
    *,
    ip: str,
    now: datetime,
    credits: int,
    days: int,
    per_ip_per_day: int,
) -> CreditLot | None:
    """Grant the signup credits unless this mailbox already had them or this network has had
    its share today. Returns the lot, or None when nothing was granted."""
    if credits <= 0:
        return None
    key = mailbox_key(email)
    known = select(SignupGrant).where(SignupGrant.email_key.in_((key, erased_key(key))))
    if session.scalars(known).first() is not None:
        return None
    if ip:
        recent = session.scalar(
            select(func.count())
            .select_from(SignupGrant)
            .where(
                SignupGrant.ip == ip,
                SignupGrant.granted.is_(True),
                SignupGrant.created_at > now - timedelta(days=1),
            )
        )
        if (recent or 0) >= per_ip_per_day:
            session.add(
                SignupGrant(email_key=key, user_id=user_id, ip=ip, granted=False, created_at=now)
            )
            session.flush()
            return None
    session.add(SignupGrant(email_key=key, user_id=user_id, ip=ip, granted=True, created_at=now))
    return ledger.grant(
        session,
        user_id,
        credits,
        source="signup",
        now=now,
        expires_at=now + timedelta(days=days),
        reference="signup",
        idempotency_key=f"signup:{user_id}",
    )


def ensure_monthly_allowance(
    session: Session, user_id: int, *, now: datetime, credits: int
) -> CreditLot | None:
    """The month's free credits, granted on first use in the month and expiring at its end."""
    if credits <= 0:
        return None
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (start + timedelta(days=32)).replace(day=1)
    return ledger.grant(
        session,
        user_id,
        credits,
        source="monthly",
        now=now,
        expires_at=next_month,
        reference=f"monthly:{start:%Y-%m}",
        idempotency_key=f"monthly:{user_id}:{start:%Y-%m}",
    )


def normalise_code(code: str) -> str:
    return code.strip().upper()


def create_promo(
    session: Session,
    code: str,
    *,
    credits: int,
    max_uses: int,
    credit_days: int,
    redeem_by: datetime | None,
    now: datetime,
    admin_id: int | None,
) -> PromoCode:
    code = normalise_code(code)
    if not (3 <= len(code) <= 40) or not code.replace("-", "").replace("_", "").isalnum():
        raise DomainError(
            "Use 3 to 40 letters, digits, - or _ for a promo code.", code="invalid_promo_code"
        )
    if credits <= 0 or max_uses <= 0 or credit_days <= 0:
        raise DomainError(
            "Credits, uses and validity days must all be positive.", code="invalid_promo_code"
        )
    if session.scalar(select(PromoCode).where(PromoCode.code == code)) is not None:
        raise Conflict(f"The promo code {code} already exists.", code="promo_code_taken")
    promo = PromoCode(
        code=code,
        credits=credits,
        max_uses=max_uses,
        used=0,
        redeem_by=redeem_by,
        credit_days=credit_days,
        created_at=now,
        created_by=admin_id,
    )
    session.add(promo)
    session.flush()
    return promo


def close_promo(session: Session, code: str, *, now: datetime) -> PromoCode:
    """End a code's redemption period now (a leaked or mistaken code); credits already
    redeemed stay with their owners."""
    promo = session.scalar(select(PromoCode).where(PromoCode.code == normalise_code(code)))
    if promo is None:
        raise NotFound("There is no such promo code. Check the spelling.", code="promo_not_found")
    if promo.redeem_by is None or promo.redeem_by > now:
        promo.redeem_by = now
    session.flush()
    return promo


def redeem_promo(
    session: Session, user_id: int, code: str, *, email: str, now: datetime
) -> CreditLot:
    """Once per account and per mailbox (`email`'s, aliases included, as for the signup
    grant)."""
    code = normalise_code(code)
    mailbox = erased_key(mailbox_key(email))
    promo = session.scalar(select(PromoCode).where(PromoCode.code == code))
    if promo is None:
        raise NotFound("There is no such promo code. Check the spelling.", code="promo_not_found")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT id FROM promo_codes WHERE id = :id FOR UPDATE"), {"id": promo.id}
        )
        session.refresh(promo)
    if promo.redeem_by is not None and promo.redeem_by <= now:
        raise DomainError("This promo code has expired.", code="promo_expired", status_code=410)
    already = session.scalar(
        select(PromoRedemption).where(
            PromoRedemption.promo_id == promo.id,
            or_(PromoRedemption.user_id == user_id, PromoRedemption.mailbox == mailbox),
        )
    )
    if already is not None:
        raise Conflict("You have already redeemed this promo code.", code="promo_already_redeemed")
    if promo.used >= promo.max_uses:
        raise Conflict("This promo code has been used up.", code="promo_exhausted")
    promo.used += 1
    lot = ledger.grant(
        session,
        user_id,
        promo.credits,
        source="promo",
        now=now,
        expires_at=now + timedelta(days=promo.credit_days),
        reference=f"promo:{promo.code}",
        idempotency_key=f"promo:{promo.id}:{user_id}",
    )
    assert lot is not None
    session.add(
        PromoRedemption(
            promo_id=promo.id, user_id=user_id, mailbox=mailbox, lot_id=lot.id, created_at=now
        )
    )
    session.flush()
    return lot
