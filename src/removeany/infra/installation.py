"""One secret key per installation, checked where each process starts.

Every process of an installation (`serve` replicas, workers, operator commands) must hold the
same secret key: two-factor secrets are sealed, emailed links signed and, with
`REMOVEANY_ENCRYPT_FILES`, files encrypted under it. Without `REMOVEANY_SECRET_KEY` each
data folder generates its own, so a worker on another machine, or a database restored
beside a new data folder, would go on with a key under which none of that opens. The
database keeps an HMAC of the key (never the key), recorded by the first process that
starts; a process whose key gives another one stops before it serves anything.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from removeany.infra.db import Base, Database, UTCDateTime

# What the key is checked on; changing it would refuse every existing installation.
CHECK_MESSAGE = b"removeany: the installation's secret key"


class InstallationKey(Base):
    """The single row: which secret key this installation's data was made under."""

    __tablename__ = "installation_key"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_check: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SecretKeyMismatch(Exception):
    """This process's secret key is not the installation's: it must not start."""

    def __init__(self) -> None:
        super().__init__(
            "this process's secret key is not the one this installation's database was set "
            "up with. Every process (serve, worker, operator commands) needs the same "
            "REMOVEANY_SECRET_KEY, or the same DATA_DIR/secret_key file: under another key, "
            "two-factor codes, links already emailed and encrypted files fail. If the first "
            "key is lost for good, `removeany admin adopt-secret-key` makes this one the "
            "installation's (what was made under the lost key stays unreadable)."
        )


def key_check(secret_key: str) -> str:
    """An HMAC that tells keys apart without revealing them."""
    return hmac.new(secret_key.encode(), CHECK_MESSAGE, hashlib.sha256).hexdigest()


def check_secret_key(db: Database, secret_key: str, *, now: datetime) -> None:
    """Record the key where none is yet (the first start); else raise `SecretKeyMismatch`
    unless it is the recorded one. Of two processes starting at once, the second's insert
    fails on the primary key and it compares with the first's."""
    expected = key_check(secret_key)
    try:
        recorded = _recorded_or_record(db, expected, now)
    except IntegrityError:
        recorded = _recorded_or_record(db, expected, now)
    if not hmac.compare_digest(recorded, expected):
        raise SecretKeyMismatch


def _recorded_or_record(db: Database, expected: str, now: datetime) -> str:
    with db.transaction() as session:
        row = session.get(InstallationKey, 1)
        if row is None:
            session.add(InstallationKey(id=1, key_check=expected, recorded_at=now))
            return expected
        return row.key_check


def adopt_secret_key(session: Session, secret_key: str, *, now: datetime) -> bool:
    """Make this key the installation's, in the caller's transaction; whether another key
    was recorded before."""
    expected = key_check(secret_key)
    row = session.scalars(select(InstallationKey).with_for_update()).first()
    if row is None:
        session.add(InstallationKey(id=1, key_check=expected, recorded_at=now))
        session.flush()
        return False
    replaced = not hmac.compare_digest(row.key_check, expected)
    row.key_check, row.recorded_at = expected, now
    session.flush()
    return replaced
