"""How a provider's answer becomes one of our errors: HTTP statuses and unusable bodies.

Each wire-format adapter extracts the message and code from its own error envelope
(`UpstreamFault`) and calls `classify` once; the status table lives only here, next to
the checks that decide a 2xx body cannot be trusted (not JSON, counts not integers).
Messages are short, scrubbed of anything that looks like a credential, and never
include our request or headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from shared.errors import (
    UnsupportedByModel,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamMalformed,
    UpstreamMisconfigured,
    UpstreamModelNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
)
from shared.providers.retry_after import retry_after_seconds

# Stable codes that let a fanout tell "wrong upstream name" from "wrong URL".
MODEL_NOT_FOUND_CODE = "upstream_model_not_found"
PATH_NOT_FOUND_CODE = "upstream_path_not_found"
# The account is out of money or credit: a 429 that no amount of waiting fixes.
QUOTA_EXHAUSTED_CODE = "upstream_quota_exhausted"

MAX_MESSAGE_CHARS = 200

# Upstream codes meaning "this model name is not served here" (OpenAI, Together, Mistral, ...).
_MODEL_NOT_FOUND_CODES = frozenset({"model_not_found", "model_not_available", "invalid_model"})
_MODEL_NOT_FOUND_TEXT = re.compile(
    r"\bmodel\b.{0,160}\b(?:does not exist|not exist|not found|not available|inaccessible|not supported)"
    r"|\b(?:invalid|unknown|unsupported) model\b|\bunable to access model\b|\bno such model\b",
    re.IGNORECASE,
)
# Upstream codes and texts meaning "this model cannot take one of the fields sent": another
# model may take the same request. OpenAI's codes (e.g. "Unsupported parameter: 'max_tokens' is
# not supported with this model", code unsupported_parameter); Anthropic's texts carry no code
# ("`temperature` and `top_p` cannot both be specified for this model").
_UNSUPPORTED_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
_UNSUPPORTED_TEXT = re.compile(
    r"\bunsupported (?:parameter|value)\b|\bis not supported (?:with|by|for) this model\b"
    r"|\bcannot both be specified\b|\bdoes not support\b.{0,80}\bwith this model\b"
    r"|\bnot allowed to request logprobs\b",  # OpenAI's 403 for logprobs on a reasoning model
    re.IGNORECASE,
)
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "enforced_spend_limit_reached"})
_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(api[ _-]?key[^:]{0,40}:\s*)\S+"),
    re.compile(r"(?i)(bearer\s+)\S+"),
    re.compile(r"()\b(?:sk|gsk|xai|pk|rk|fw|nvapi|key)[-_][A-Za-z0-9_\-*.]{4,}"),
    re.compile(r"()\b[A-Za-z0-9]{32,}\b"),
)


@dataclass(frozen=True, slots=True)
class UpstreamFault:
    """What an adapter read from an error body: the provider's message and machine code, if any."""

    message: str = ""
    code: str | None = None
    model_not_found: bool = False


def classify(status: int, headers: Mapping[str, str], fault: UpstreamFault) -> UpstreamError:
    """The one status table: map a non-2xx answer to the error the rest of the system reasons about."""
    detail = scrub(fault.message)
    said = f": {detail}" if detail else ""
    if status in (400, 403, 422) and not fault.model_not_found and _unsupported(fault):
        return UnsupportedByModel(f"this model does not take a field of the request (HTTP {status}){said}",
                                  upstream_status=status)
    if status in (401, 403):
        # The provider's text may echo part of the key, so it is not passed on.
        return UpstreamAuthFailed(f"provider rejected our credentials (HTTP {status})", upstream_status=status)
    if status in (400, 404) and fault.model_not_found:
        return UpstreamModelNotFound(
            f"provider does not serve this model name (HTTP {status}){said}",
            code=MODEL_NOT_FOUND_CODE,
            upstream_status=status,
        )
    if status == 404:
        return UpstreamMisconfigured(
            f"provider has no such endpoint (HTTP 404); check the catalog URL{said}",
            code=PATH_NOT_FOUND_CODE,
            upstream_status=status,
        )
    if status == 429:
        if fault.code in _QUOTA_CODES:
            return UpstreamError(
                f"provider account has no quota left (HTTP 429){said}",
                code=QUOTA_EXHAUSTED_CODE,
                upstream_status=status,
            )
        return UpstreamRateLimited(
            f"provider rate limited the request (HTTP 429){said}",
            upstream_status=status,
            retry_after_s=retry_after_seconds(headers),
        )
    if status >= 500 or status == 408:
        return UpstreamServerError(
            f"provider failed (HTTP {status}){said}",
            upstream_status=status,
            retry_after_s=retry_after_seconds(headers),
        )
    if 400 <= status < 500:
        return UpstreamRejected(f"provider rejected the request (HTTP {status}){said}", upstream_status=status)
    return UpstreamMalformed(f"provider answered with unexpected HTTP {status}", upstream_status=status)


def _unsupported(fault: UpstreamFault) -> bool:
    if fault.code is not None and fault.code.lower() in _UNSUPPORTED_CODES:
        return True
    return bool(_UNSUPPORTED_TEXT.search(fault.message))


def looks_like_model_not_found(code: str | None, message: str) -> bool:
    """True when an error code or message says the model name is unknown to the provider."""
    if code is not None and code.lower() in _MODEL_NOT_FOUND_CODES:
        return True
    return bool(_MODEL_NOT_FOUND_TEXT.search(message))


def scrub(message: str) -> str:
    """A short single-line version of an upstream message with credential-like tokens removed."""
    text = " ".join(message.split())
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3].rstrip() + "..."
    return text


def decode_object(content: bytes, *, status: int) -> dict[str, Any]:
    """Parse a JSON object body or raise UpstreamMalformed (without quoting the body)."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamMalformed(
            f"provider answered HTTP {status} with a body that is not JSON ({len(content)} bytes)",
            upstream_status=status,
        ) from None
    if not isinstance(data, dict):
        raise UpstreamMalformed(
            f"provider answered HTTP {status} with JSON that is not an object", upstream_status=status
        )
    return data


def try_decode_object(content: bytes) -> dict[str, Any] | None:
    """Best-effort parse of an error body: error pages are often HTML or empty."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def token_count(value: object) -> int | None:
    """A usage count as an int: JSON integers (or integral floats), never booleans or strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None
