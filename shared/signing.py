"""Ed25519 signatures over canonical JSON: receipts and audit checkpoints, verifiable by anyone
with the public keys we publish at `/.well-known/jwks.json`.

The rule, for an object `o` carrying a `signature` member:
    signature.value = base64url(Ed25519-sign(canonical_json(o without "signature" and its aliases)))
    signature.kid   = the RFC 7638 thumbprint of the signing key's JWK
with canonical JSON as the audit chain defines it (sorted keys, "," and ":", UTF-8).
Key rotation: the current key signs; retired keys stay in the JWKS so older signatures
still verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.audit.chain import canonical_json

ALG = "EdDSA"


class SigningKeyMissing(RuntimeError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def jwk(key: Ed25519PublicKey) -> dict[str, str]:
    x = b64url(raw_public(key))
    thumbprint = b64url(hashlib.sha256(
        json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True).encode()
    ).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint, "use": "sig", "alg": ALG}


# Members a receipt carries for the `ainfera` SDK that restate signed ones (`id`, `job_id`, the
# tenant's chain): outside the signature, so receipts signed before they existed still verify.
ALIASES = frozenset({"receipt_id", "inference_id", "audit_url"})


def unsigned(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "signature" and k not in ALIASES}


@dataclass(frozen=True)
class Signer:
    """The current signing key and every public key a verifier may meet."""

    key: Ed25519PrivateKey
    retired: tuple[Ed25519PublicKey, ...] = ()
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kid", jwk(self.key.public_key())["kid"])

    def sign(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """`obj` with a `signature` member added."""
        body = unsigned(obj)
        value = self.key.sign(canonical_json(body))
        return {**body, "signature": {"alg": ALG, "kid": self.kid, "value": b64url(value)}}

    def signature_of(self, obj: Mapping[str, Any]) -> dict[str, str]:
        return dict(self.sign(obj)["signature"])

    def jwks(self) -> dict[str, Any]:
        return {"keys": [jwk(self.key.public_key()), *(jwk(k) for k in self.retired)]}


def public_keys(jwks: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """kid -> key from a JWKS document (only Ed25519 OKP keys)."""
    out: dict[str, Ed25519PublicKey] = {}
    for k in jwks.get("keys", []):
        if k.get("kty") == "OKP" and k.get("crv") == "Ed25519" and isinstance(k.get("x"), str):
            key = Ed25519PublicKey.from_public_bytes(b64url_decode(k["x"]))
            out[jwk(key)["kid"]] = key
    return out


def verify(obj: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None when `obj`'s signature is valid under one of `keys`; else why not."""
    sig = obj.get("signature")
    if not isinstance(sig, Mapping) or sig.get("alg") != ALG:
        return "no EdDSA signature"
    key = keys.get(str(sig.get("kid")))
    if key is None:
        return f"unknown key id {sig.get('kid')!r}"
    try:
        key.verify(b64url_decode(str(sig.get("value", ""))), canonical_json(unsigned(obj)))
    except (InvalidSignature, ValueError):
        return "signature does not match"
    return None


# --- keys on disk ---------------------------------------------------------------------------


def generate_key_file(path: Path) -> Ed25519PrivateKey:
    """Write a new private key (PKCS#8 PEM, mode 0600). Refuses to overwrite."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def load_private(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key is not an Ed25519 private key")
    return key


def load_public(pem: bytes) -> Ed25519PublicKey:
    """A retired key: its public key, from a public or a private PEM."""
    if b"PRIVATE KEY" in pem:
        return load_private(pem).public_key()
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("a retired key is not an Ed25519 key")
    return key


def load_signer(key_pem: str | None, key_file: str | None, retired_files: Sequence[str]) -> Signer:
    if key_pem:
        key = load_private(key_pem.encode())
    elif key_file and Path(key_file).exists():
        key = load_private(Path(key_file).read_bytes())
    else:
        raise SigningKeyMissing(
            "No signing key: set AINFERA_SIGNING_KEY (PEM) or AINFERA_SIGNING_KEY_FILE, or create one with "
            "`ainfera-dispatch keys generate` (make up does this on its first run)."
        )
    retired = tuple(load_public(Path(f).read_bytes()) for f in retired_files)
    return Signer(key, retired)
