"""API keys: how they are made and hashed. Only the SHA-256 hash is ever stored.

Keys carry 256 bits of randomness, so a plain SHA-256 is the right hash (no salt or
slow KDF is needed for secrets that cannot be guessed); lookups go by hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "sk-ainf-"
PREFIX_SHOWN = 12  # "sk-ainf-" plus four characters, enough to recognise a key in a list


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def shown_prefix(key: str) -> str:
    return key[:PREFIX_SHOWN]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time comparison (for the admin key, which is configured, not looked up)."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
