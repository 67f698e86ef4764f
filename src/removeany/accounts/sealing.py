"""Secrets the server must read back (TOTP seeds) are stored sealed with AES-256-GCM under a
key derived from the instance's secret key (HKDF-SHA256), bound to their purpose and owner.
A database dump alone does not give an attacker anyone's second factor. Changing the secret
key makes sealed values unreadable: people then sign in with a recovery code and set 2FA up
again."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1:"


def _key(secret_key: str, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"removeany-seal", info=purpose.encode()
    ).derive(secret_key.encode())


def seal(secret_key: str, purpose: str, owner: str, plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(secret_key, purpose)).encrypt(nonce, plaintext.encode(), owner.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(secret_key: str, purpose: str, owner: str, value: str) -> str | None:
    """The plaintext, or None when the value was sealed with another key or tampered with."""
    if not value.startswith(PREFIX):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[len(PREFIX) :].encode())
        plain = AESGCM(_key(secret_key, purpose)).decrypt(raw[:12], raw[12:], owner.encode())
    except (InvalidTag, ValueError):
        return None
    return plain.decode()
