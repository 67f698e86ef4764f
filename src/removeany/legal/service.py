"""Versioned terms: what the current version is, who accepted it, publishing a new one.
Flushes, never commits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from removeany.accounts.models import User
from removeany.errors import DomainError, Forbidden
from removeany.i18n import LOCALES, normalize, t, translate, use
from removeany.infra.settings import Settings
from removeany.legal import texts
from removeany.legal.models import LegalVersion, TermsAcceptance
from removeany.mail import service as mail
from removeany.moderation import audit


class TermsNotAccepted(Forbidden):
    code = "terms_not_accepted"
    page = "/legal/accept"


@dataclass(frozen=True)
class Terms:
    version: int
    summary: str
    terms_en: str
    terms_zh: str
    privacy_en: str
    privacy_zh: str
    published_at: datetime


def _built_in(version: int, date: str, summary: str, *texts: str) -> Terms:
    terms_en, terms_zh, privacy_en, privacy_zh = texts
    return Terms(
        version=version,
        summary=summary,
        terms_en=terms_en,
        terms_zh=terms_zh,
        privacy_en=privacy_en,
        privacy_zh=privacy_zh,
        published_at=datetime.fromisoformat(date).replace(tzinfo=UTC),
    )


BUILTIN_V1 = _built_in(
    1,
    texts.VERSION_1_DATE,
    texts.VERSION_1_SUMMARY,
    texts.TERMS_EN,
    texts.TERMS_ZH,
    texts.PRIVACY_EN,
    texts.PRIVACY_ZH,
)
BUILTIN_V2 = _built_in(
    2,
    texts.VERSION_2_DATE,
    texts.VERSION_2_SUMMARY,
    texts.TERMS_V2_EN,
    texts.TERMS_V2_ZH,
    texts.PRIVACY_V2_EN,
    texts.PRIVACY_V2_ZH,
)
# What an installation with no operator text of its own shows: `install_builtin` publishes it.
BUILTIN = BUILTIN_V2


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
    """The version in force: the newest published, or (in a database `install_builtin` has
    not run on yet) the newest built-in version."""
    row = _latest(session)
    return _terms(row) if row is not None else BUILTIN


def get(session: Session, version: int) -> Terms:
    row = session.get(LegalVersion, version)
    if row is not None:
        return _terms(row)
    fallback = current(session)
    if version == fallback.version:
        return fallback
    raise DomainError("There is no such version of the terms.", code="not_found", status_code=404)


def versions(session: Session) -> list[Terms]:
    rows = session.scalars(select(LegalVersion).order_by(LegalVersion.version)).all()
    return [_terms(r) for r in rows] or [BUILTIN]


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
    if session.scalar(select(LegalVersion.version).limit(1)) is None:
        _add_builtin_rows(session, now=now)  # what was in force becomes the history
    version = current(session).version + 1
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


def _row(terms: Terms, *, published_at: datetime) -> LegalVersion:
    return LegalVersion(
        version=terms.version,
        summary=terms.summary,
        terms_en=terms.terms_en,
        terms_zh=terms.terms_zh,
        privacy_en=terms.privacy_en,
        privacy_zh=terms.privacy_zh,
        published_at=published_at,
        published_by=audit.BUILT_IN,
    )


def _is_builtin(row: LegalVersion) -> bool:
    return row.published_by_id is None and row.published_by == audit.BUILT_IN


def _add_builtin_rows(session: Session, *, now: datetime) -> bool:
    """Into an empty `legal_versions`: the built-in versions as they applied here. Version 1
    only where it was in force: an installation whose accounts were made under it (an
    empty table with accounts, none of which accepted a later version: acceptances of it
    must stay readable, and it is what those people were shown). A new installation starts
    at the newest built-in version, published now, with no earlier text that never applied
    to it. Returns whether version 1 was in force (its users are then told of the change)."""
    has_accounts = session.scalar(select(User.id).limit(1)) is not None
    accepted_later = session.scalar(
        select(TermsAcceptance.id).where(TermsAcceptance.version > 1).limit(1)
    )
    was_in_force = has_accounts and accepted_later is None
    if was_in_force:
        session.add(_row(BUILTIN_V1, published_at=BUILTIN_V1.published_at))
    session.add(_row(BUILTIN, published_at=now))
    session.flush()
    return was_in_force


def _latest(session: Session) -> LegalVersion | None:
    return session.scalar(select(LegalVersion).order_by(LegalVersion.version.desc()).limit(1))


def builtin_withheld(session: Session) -> int | None:
    """The operator's own version kept in force instead of the newest built-in one, where it
    was published before that built-in text was written (so it cannot have taken account of
    it: the operator is told, at startup and on /admin); None otherwise (a version of theirs
    published since, they have seen it)."""
    latest = _latest(session)
    if latest is None or _is_builtin(latest) or latest.published_at >= BUILTIN.published_at:
        return None
    return latest.version


@dataclass(frozen=True)
class Installed:
    """What `install_builtin` did: `published` the built-in version it published (None: none),
    `replaced` whether it replaced an earlier built-in version people had been shown (they
    are then told), `withheld` the operator's version kept in force instead of a newer
    built-in one (None: nothing withheld)."""

    published: Terms | None = None
    replaced: bool = False
    withheld: int | None = None


def install_builtin(session: Session, *, base_url: str, now: datetime) -> Installed:
    """Publish the newest built-in version where no text of the operator's is in force: on a
    new installation (as its first version), and where an earlier built-in version is
    current (an upgrade). Then, as when an admin publishes, the change is audited, every user
    is emailed, and everyone must accept it before their next job. Where the operator has
    published a version of their own, theirs stays in force: nothing is published, and
    `withheld` names their version, for the caller to tell the operator. Run at startup
    (`legal.install`); doing it again changes nothing."""
    latest = _latest(session)
    if latest is None:
        replaced = _add_builtin_rows(session, now=now)
    elif not _is_builtin(latest):
        return Installed(withheld=builtin_withheld(session))  # theirs wins
    elif latest.version >= BUILTIN.version:
        return Installed()
    else:
        session.add(_row(BUILTIN, published_at=now))
        session.flush()
        replaced = True
    if replaced:
        audit.record(
            session,
            audit.Actor(None, audit.BUILT_IN),
            "terms.publish",
            reason=BUILTIN.summary,
            now=now,
            target=f"terms v{BUILTIN.version}",
            details={"version": BUILTIN.version, "built_in": True},
        )
        notify_users(session, BUILTIN, base_url=base_url, now=now)
    return Installed(published=BUILTIN, replaced=replaced)


def notify_users(session: Session, terms: Terms, *, base_url: str, now: datetime) -> int:
    """Email every active or restricted user with a confirmed address about a new version,
    in the transaction that publishes it, each in their own language (`notice_text`);
    returns how many."""
    stmt = select(User.id, User.email, User.locale).where(
        User.status.in_(("active", "restricted")), User.email_verified_at.is_not(None)
    )
    users = session.execute(stmt).all()
    written: dict[str | None, tuple[str, str]] = {}
    for user_id, address, locale in users:
        chosen = normalize(locale)
        if chosen not in written:
            written[chosen] = notice_text(base_url, terms, chosen)
        subject, body = written[chosen]
        mail.write(session, to=address, subject=subject, body=body, user_id=user_id, now=now)
    return len(users)


def summary_shown(terms: Terms) -> str:
    """What changed in `terms`, as shown in the current language: a built-in version's
    summary is the software's text and is translated (`legal.texts`); an operator's is shown
    as they wrote it."""
    if terms.summary in _BUILT_IN_SUMMARIES:
        return translate(terms.summary)
    return terms.summary or t("see the new text")


_BUILT_IN_SUMMARIES = frozenset({BUILTIN_V1.summary, BUILTIN_V2.summary})


def notice_text(base_url: str, terms: Terms, locale: str | None) -> tuple[str, str]:
    """Subject and body of the email announcing `terms`, in `locale` (the recipient's
    `User.locale`). Where none is stored (an account made through the API or the command
    line, or before languages were stored) nobody knows which language the person reads, and
    whoever published is not the reader: then both, English first."""
    link = f"{base_url.rstrip('/')}/legal/accept"
    if locale in LOCALES:
        return _notice(terms, locale, f"{link}?lang={locale}")
    en_subject, en_body = _notice(terms, "en", link)
    zh_subject, zh_body = _notice(terms, "zh-CN", link)
    return f"{en_subject} / {zh_subject}", f"{en_body}\n---\n\n{zh_body}"


def _notice(terms: Terms, locale: str, link: str) -> tuple[str, str]:
    """The notice in one language. `link` opens the page where the new version is read and
    accepted (after signing in): with `?lang=` the recipient's language, which that also
    makes the site's in their browser; a bilingual email's leaves the browser's own choice."""
    with use(locale):
        subject = t("RemoveAny terms updated (version {version})", version=terms.version)
        body = (
            t(
                "We have published version {version} of the RemoveAny Terms of Service and "
                "Privacy Policy.",
                version=terms.version,
            )
            + "\n\n"
            + t("What changed: {summary}", summary=summary_shown(terms))
            + "\n\n"
            + t("Read them and accept them here: {link}", link=link)
            + "\n\n"
            + t(
                "You will be asked to accept them before you next use the services. If you do "
                "not agree, you can delete your account on your account's security page."
            )
            + "\n"
        )
    return subject, body


def placeholders(settings: Settings) -> dict[str, str]:
    """What a text's `{name}` placeholders are replaced with when it is shown: the site's
    address and the settings that decide how long data is kept (`legal.texts`). Operator texts
    may use them too."""
    return {
        "operator": settings.base_url.rstrip("/"),
        "retention_hours": f"{settings.retention_hours:g}",
        "mail_keep_sent_hours": f"{settings.mail_keep_sent_hours:g}",
        "mail_keep_failed_days": f"{settings.mail_keep_failed_days:g}",
        "session_days": str(settings.session_days),
        "password_reset_minutes": str(settings.password_reset_minutes),
        "known_device_days": str(settings.known_device_days),
    }


# A placeholder followed by an English unit: "{retention_hours} hours" reads "1 hour" at 1.
_COUNTED = re.compile(r"\{(\w+)\} (hour|day|minute)s\b")


def render(text: str, settings: Settings) -> str:
    """A stored text as shown: each known placeholder replaced, any other brace left as is."""
    values = placeholders(settings)

    def counted(match: re.Match[str]) -> str:
        name, unit = match.group(1), match.group(2)
        if name not in values:
            return match.group(0)
        return f"{values[name]} {unit}" + ("" if values[name] == "1" else "s")

    text = _COUNTED.sub(counted, text)
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text
