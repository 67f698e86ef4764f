"""Versioned terms: what the current version is, who accepted it, publishing a new one.
Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.errors import DomainError, Forbidden
from removeany.legal import texts
from removeany.legal.models import LegalVersion, TermsAcceptance
from removeany.mail import service as mail
from removeany.moderation import audit


class TermsNotAccepted(Forbidden):
    code = "terms_not_accepted"


@dataclass(frozen=True)
class Terms:
    version: int
    summary: str
    terms_en: str
    terms_zh: str
    privacy_en: str
    privacy_zh: str
    published_at: datetime


BUILTIN = Terms(
    version=1,
    summary=texts.VERSION_1_SUMMARY,
    terms_en=texts.TERMS_EN,
    terms_zh=texts.TERMS_ZH,
    privacy_en=texts.PRIVACY_EN,
    privacy_zh=texts.PRIVACY_ZH,
    published_at=datetime.fromisoformat(texts.VERSION_1_DATE).replace(tzinfo=UTC),
)


def _terms(row: LegalVersion) -> Terms:
    return Terms(
        version=row.version,
        summary=row.summary,
        terms_en=row.terms_en,
        terms_zh=row.terms_zh,
        privacy_en=row.privacy_en,
        privacy_zh=row.privacy_zh,
        published_at=row.published_at,
    )


def current(session: Session) -> Terms:
    row = session.scalar(select(LegalVersion).order_by(LegalVersion.version.desc()).limit(1))
    return _terms(row) if row is not None else BUILTIN


def get(session: Session, version: int) -> Terms:
    row = session.get(LegalVersion, version)
    if row is not None:
        return _terms(row)
    if version == 1:
        return BUILTIN
    raise DomainError("There is no such version of the terms.", code="not_found", status_code=404)


def versions(session: Session) -> list[Terms]:
    rows = session.scalars(select(LegalVersion).order_by(LegalVersion.version)).all()
    found = [_terms(r) for r in rows]
    return found if any(t.version == 1 for t in found) else [BUILTIN, *found]


def accepted_version(session: Session, user_id: int) -> int | None:
    value = session.scalar(
        select(func.max(TermsAcceptance.version)).where(TermsAcceptance.user_id == user_id)
    )
    return int(value) if value is not None else None


def has_accepted_current(session: Session, user: User) -> bool:
    return accepted_version(session, user.id) == current(session).version


def require_current(session: Session, user: User) -> None:
    terms = current(session)
    if accepted_version(session, user.id) != terms.version:
        raise TermsNotAccepted(
            f"Accept the current Terms of Service and Privacy Policy (version {terms.version}) "
            "before using the services: open /legal/accept on the website, or POST "
            "/api/v1/legal/accept."
        )


def accept(
    session: Session,
    user: User,
    version: int,
    *,
    now: datetime,
    ip: str = "",
    user_agent: str = "",
) -> TermsAcceptance:
    terms = current(session)
    if version != terms.version:
        raise DomainError(
            f"Version {version} is not the current version of the terms ({terms.version}). "
            "Read the current version and accept that.",
            code="terms_outdated",
            status_code=409,
        )
    acceptance = TermsAcceptance(
        user_id=user.id, version=version, accepted_at=now, ip=ip[:64], user_agent=user_agent[:400]
    )
    session.add(acceptance)
    session.flush()
    return acceptance


def acceptances(session: Session, user_id: int) -> Sequence[TermsAcceptance]:
    stmt = (
        select(TermsAcceptance)
        .where(TermsAcceptance.user_id == user_id)
        .order_by(TermsAcceptance.id)
    )
    return session.scalars(stmt).all()


def publish(
    session: Session,
    actor: audit.Actor,
    *,
    summary: str,
    terms_en: str,
    terms_zh: str,
    privacy_en: str,
    privacy_zh: str,
    now: datetime,
) -> Terms:
    """A new version, which everyone must accept on their next use of the services."""
    for name, value in (
        ("terms_en", terms_en),
        ("terms_zh", terms_zh),
        ("privacy_en", privacy_en),
        ("privacy_zh", privacy_zh),
    ):
        if len(value.strip()) < 20:
            raise DomainError(
                f"{name} is empty or too short. Give the full text.", code="invalid_request"
            )
    version = current(session).version + 1
    if version == 2 and session.get(LegalVersion, 1) is None:
        session.add(_row(BUILTIN, published_by=audit.BUILT_IN))
    row = LegalVersion(
        version=version,
        summary=summary.strip()[:2000],
        terms_en=terms_en,
        terms_zh=terms_zh,
        privacy_en=privacy_en,
        privacy_zh=privacy_zh,
        published_at=now,
        published_by_id=actor.id,
        published_by=audit.label(actor),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "terms.publish",
        reason=summary or f"version {version}",
        now=now,
        target=f"terms v{version}",
        details={"version": version},
    )
    return _terms(row)


def publisher(session: Session, version: int) -> str:
    """Who published a version, as shown: the admin's address as it is now
    (`deleted-<id>@invalid` once erased), `cli:<os user>`, or `audit.BUILT_IN` (pages show
    it through `audit.shown`)."""
    row = session.get(LegalVersion, version)
    if row is None:
        return audit.BUILT_IN
    return audit.names(session, [(row.published_by_id, row.published_by)])[0]


def _row(terms: Terms, *, published_by: str) -> LegalVersion:
    return LegalVersion(
        version=terms.version,
        summary=terms.summary,
        terms_en=terms.terms_en,
        terms_zh=terms.terms_zh,
        privacy_en=terms.privacy_en,
        privacy_zh=terms.privacy_zh,
        published_at=terms.published_at,
        published_by=published_by,
    )


def notify_users(session: Session, terms: Terms, *, base_url: str, now: datetime) -> int:
    """Email every active or restricted user with a confirmed address about a new version,
    in the transaction that publishes it; returns how many."""
    subject, body = notice_text(base_url, terms)
    stmt = select(User.id, User.email).where(
        User.status.in_(("active", "restricted")), User.email_verified_at.is_not(None)
    )
    users = session.execute(stmt).all()
    for user_id, address in users:
        mail.write(session, to=address, subject=subject, body=body, user_id=user_id, now=now)
    return len(users)


def notice_text(base_url: str, terms: Terms) -> tuple[str, str]:
    base = base_url.rstrip("/")
    return (
        f"RemoveAny terms updated (version {terms.version})",
        f"We have published version {terms.version} of the RemoveAny Terms of Service and "
        f"Privacy Policy.\n\nWhat changed: {terms.summary or 'see the new text'}\n\n"
        f"Read them here: {base}/legal/terms\n\nYou will be asked to accept them the next time "
        "you use the services. If you do not agree, you can delete your account from your "
        f"account page.\n\n我们发布了 RemoveAny 服务条款和隐私政策第 {terms.version} 版。"
        f"请阅读: {base}/legal/terms 。下次使用服务时需要您接受新版本。\n",
    )


def render_operator(text: str, base_url: str) -> str:
    return text.replace("{operator}", base_url.rstrip("/"))
