"""Password hashing with argon2id, and the rules a new password must meet."""

from __future__ import annotations

import contextlib
import gzip
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from removeany.errors import DomainError

MIN_LENGTH = 8
MAX_LENGTH = 128

# OWASP's argon2id recommendation: 19 MiB memory, 2 iterations, 1 lane.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Burn comparable time for unknown emails so response timing does not reveal accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class WeakPassword(DomainError):
    code = "weak_password"


# 20,000 common and breached passwords shipped with the package (source: data/NOTICE).
COMMON_PASSWORDS = Path(__file__).parent / "data" / "common-passwords.txt.gz"


@lru_cache(maxsize=1)
def _common() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip() for line in fh if line.strip())


def is_common(password: str) -> bool:
    return password.strip().lower() in _common()


def check_policy(password: str, *, email: str | None = None) -> None:
    """Length 8..128 (any characters, spaces included: no composition rules), not a common
    or breached password, and not the email address itself."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"Choose a password of at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Choose a password of at most {MAX_LENGTH} characters.")
    if is_common(password):
        raise WeakPassword(
            "This password is on a list of common or breached passwords that attackers try "
            "first. Choose another, for example a few unrelated words."
        )
    if email and password.strip().lower() in {email.lower(), email.split("@")[0].lower()}:
        raise WeakPassword("Choose a password that is not your email address.")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except InvalidHashError:
        # A deleted account's "!" matches nothing, after the same work as a real check.
        with contextlib.suppress(VerifyMismatchError, VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return False
    except (VerifyMismatchError, VerificationError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
