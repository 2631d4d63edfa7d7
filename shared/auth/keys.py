"""API keys: how they are made and hashed. Only the SHA-256 hash is ever stored.

Keys carry 256 bits of randomness, so a plain SHA-256 is the right hash (no salt or
slow KDF is needed for secrets that cannot be guessed); lookups go by hash.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets

KEY_PREFIX = "sk-ainf-"
PREFIX_SHOWN = 12  # "sk-ainf-" plus four characters, enough to recognise a key in a list
_KEY_BYTES = 32
# What new_api_key() makes: the prefix and unpadded URL-safe base64 of the random bytes.
_KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + rf"[A-Za-z0-9_-]{{{math.ceil(_KEY_BYTES * 4 / 3)}}}")


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)


def looks_like_api_key(token: str) -> bool:
    """Whether `token` has the shape of a key we issue; anything else is refused without a lookup."""
    return _KEY_SHAPE.fullmatch(token) is not None


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
