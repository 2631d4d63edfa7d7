"""The simulated providers' prompt caches: how many of a request's prompt tokens were read from a
cache and how many were written to one, the way each provider documents it.

- Anthropic: explicit `cache_control` breakpoints (`anthropic_usage`).
- OpenAI (and xAI, which documents the same usage field): automatic prefix caching (`automatic_usage`).
- DeepSeek: automatic, reported in its own usage fields.

Prefixes are hashed over the simulator's own token pieces (answers.py: four characters a token,
four tokens of overhead a message, 85 an image), so the counts add up to the prompt tokens the
dialects report. Tools count no tokens there, so a prefix of tools alone is never long enough to
cache; they are part of every later prefix, as the providers document. Entries live per (host,
API key, model) in one LRU bounded by `max_entries`, with each provider's lifetime, on an
injectable clock: the same requests in the same order always get the same usage.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from shared.catalog.param_rules import rules_for
from shared.catalog.types import WireFormat
from shared.simulator.answers import CHARS_PER_TOKEN, IMAGE_TOKENS, MESSAGE_OVERHEAD_TOKENS
from shared.simulator.anthropic_request import Invalid, _blocks_text
from shared.simulator.dialect import ParsedRequest
from shared.simulator.knowledge import ProviderFacts
from shared.simulator.openai_dialect import _message_text

# docs.anthropic.com/en/docs/build-with-claude/prompt-caching: a minimum cacheable prompt length per
# model (1024 tokens for most; more for some Haiku and Opus models: each model's `cache_min_tokens`
# in shared/catalog/data/param_rules.json, with its source); prompts below it are processed
# without caching. At most 4 breakpoints; `type` "ephemeral", `ttl` "5m"
# (the default) or "1h"; hits are looked for at block boundaries up to about 20 blocks before each
# breakpoint; a hit refreshes the entry's lifetime at no cost.
ANTHROPIC_MIN_TOKENS = 1024
ANTHROPIC_MAX_BREAKPOINTS = 4
ANTHROPIC_LOOKBACK_BLOCKS = 20
ANTHROPIC_TTL_S = {"5m": 300.0, "1h": 3600.0}

# platform.openai.com/docs/guides/prompt-caching: caching is automatic "for prompts that are 1024
# tokens or longer", cache hits come "in increments of 128 tokens" of the prompt's prefix, and
# cached prefixes stay for "5 to 10 minutes of inactivity" (we keep the lower bound).
AUTOMATIC_MIN_TOKENS = 1024
AUTOMATIC_INCREMENT = 128
AUTOMATIC_TTL_S = 300.0

# api-docs.deepseek.com/guides/kv_cache: caching is on by default; "each request will produce ...
# cache prefix units at the end position of the user input", and a later request hits when it
# fully matches one; usage reports `prompt_cache_hit_tokens` and `prompt_cache_miss_tokens`. No
# lifetime is published; hours to days are described, so an hour is kept here.
DEEPSEEK_TTL_S = 3600.0

# Which OpenAI-dialect providers cache on their own, and how they report it. Others report nothing.
AUTOMATIC_PROVIDERS = {"openai": "openai", "xai": "openai", "deepseek": "deepseek"}

DEFAULT_MAX_ENTRIES = 20_000


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """Prompt tokens read from the cache and written to it; the rest of the prompt is plain input."""

    read: int = 0
    written: int = 0
    style: str = "openai"  # how the dialect reports it: "openai", "deepseek" or "anthropic"


class PromptCache:
    """Prefix hashes with their expiry, least recently used first, at most `max_entries`."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # key -> (expires, ttl)
        self._max = max_entries
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def anthropic_usage(self, scope: bytes, payload: Mapping[str, Any], model: str) -> CacheUsage:
        """Cache reads and writes of an Anthropic Messages request (already validated by
        `parse_request`); raises `Invalid` for a malformed `cache_control` or too many breakpoints."""
        boundaries = list(_anthropic_boundaries(payload))
        breakpoints = [i for i, b in enumerate(boundaries) if b.ttl is not None]
        if len(breakpoints) > ANTHROPIC_MAX_BREAKPOINTS:
            raise Invalid(f"A maximum of {ANTHROPIC_MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                          f"Found {len(breakpoints)}.")
        minimum = rules_for("anthropic", model).cache_min_tokens or ANTHROPIC_MIN_TOKENS
        now = self._clock()
        read = 0
        for index in breakpoints:
            for back in range(index, max(-1, index - ANTHROPIC_LOOKBACK_BLOCKS - 1), -1):
                candidate = boundaries[back]
                if candidate.tokens >= minimum and candidate.tokens > read and self._hit(scope, candidate.digest, now):
                    read = candidate.tokens
                    break
        cacheable = [boundaries[i] for i in breakpoints if boundaries[i].tokens >= minimum]
        for b in cacheable:
            assert b.ttl is not None
            self._store(scope, b.digest, now, ANTHROPIC_TTL_S[b.ttl])
        written = max(0, cacheable[-1].tokens - read) if cacheable else 0
        return CacheUsage(read=read, written=written, style="anthropic")

    def automatic_usage(self, provider: str, scope: bytes, messages: list[Any], tools: Any) -> CacheUsage | None:
        """Cache reads of an OpenAI-dialect request at a provider that caches automatically, else None."""
        style = AUTOMATIC_PROVIDERS.get(provider)
        if style is None:
            return None
        now = self._clock()
        if style == "deepseek":
            ends = list(_openai_boundaries(messages, tools, every=None))
            read = next((b.tokens for b in reversed(ends) if self._hit(scope, b.digest, now)), 0)
            if ends:
                self._store(scope, ends[-1].digest, now, DEEPSEEK_TTL_S)
            return CacheUsage(read=read, style=style)
        steps = [b for b in _openai_boundaries(messages, tools, every=AUTOMATIC_INCREMENT)
                 if b.tokens >= AUTOMATIC_MIN_TOKENS]
        read = next((b.tokens for b in reversed(steps) if self._hit(scope, b.digest, now)), 0)
        for b in steps:
            self._store(scope, b.digest, now, AUTOMATIC_TTL_S)
        return CacheUsage(read=read, style=style)

    def _hit(self, scope: bytes, digest: bytes, now: float) -> bool:
        key = scope + digest
        entry = self._entries.get(key)
        if entry is None:
            return False
        expires, ttl = entry
        if expires <= now:
            del self._entries[key]
            return False
        self._entries[key] = (now + ttl, ttl)  # a hit refreshes the lifetime
        self._entries.move_to_end(key)
        return True

    def _store(self, scope: bytes, digest: bytes, now: float, ttl: float) -> None:
        key = scope + digest
        self._entries[key] = (now + ttl, ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


def cache_scope(host: str, api_key: str, model: str) -> bytes:
    """Caches are per organisation and model: here per API key (never stored, only its hash)."""
    return hashlib.sha256(b"\0".join((host.encode(), api_key.encode(), model.encode()))).digest()


@dataclass(frozen=True, slots=True)
class _Boundary:
    tokens: int  # prompt tokens up to and including this point
    digest: bytes  # hash of everything before it
    ttl: str | None = None  # a breakpoint's lifetime ("5m" or "1h"); None: not a breakpoint


class _Prefix:
    """A running hash over the prompt's pieces and the tokens they count."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.tokens = 0

    def add(self, material: Any, tokens: int = 0) -> None:
        self.hash.update(orjson.dumps(material, option=orjson.OPT_SORT_KEYS) + b"\x1e")
        self.tokens += tokens

    def boundary(self, ttl: str | None = None, tokens: int | None = None) -> _Boundary:
        return _Boundary(self.tokens if tokens is None else tokens, self.hash.digest(), ttl)


def _anthropic_boundaries(payload: Mapping[str, Any]) -> Iterator[_Boundary]:
    """One boundary after each tool, system block and message block, in Anthropic's cache order
    (tools, then system, then messages). Within a message, a block's boundary counts the message's
    text so far (its overhead included), so the message's last boundary is its whole count."""
    prefix = _Prefix()
    for tool in payload.get("tools") or ():
        prefix.add(["tool", _without_control(tool)])
        yield prefix.boundary(_ttl(tool))
    system = payload.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) and system else system or []
    yield from _block_boundaries(prefix, "system", blocks)
    for message in payload.get("messages") or ():
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) and content else content or []
        yield from _block_boundaries(prefix, message.get("role"), blocks)


def _block_boundaries(prefix: _Prefix, role: Any, blocks: list[dict[str, Any]]) -> Iterator[_Boundary]:
    start = prefix.tokens
    chars = images = 0
    prefix.add(["turn", role])
    for block in blocks:
        text, nested_images = _blocks_text([block])
        chars += len(text)
        images += nested_images
        prefix.add(["block", _without_control(block)])
        yield prefix.boundary(_ttl(block), tokens=start + _tokens(chars, images))
    if blocks or role != "system":
        prefix.tokens = start + _tokens(chars, images)  # the message's whole count (answers.py)


def _openai_boundaries(messages: list[Any], tools: Any, *, every: int | None) -> Iterator[_Boundary]:
    """With `every`, a boundary each `every` tokens of the prompt (pieces of four characters, four
    for a message's overhead, 85 for an image); without, one at the end of each message."""
    prefix = _Prefix()
    prefix.add(["tools", tools])
    for message in messages:
        if not isinstance(message, dict):
            continue
        text, _ = _message_text(message)
        content = message.get("content")
        parts: list[Any] = content if isinstance(content, list) else []
        pieces: list[Any] = [["turn", message.get("role"), i] for i in range(MESSAGE_OVERHEAD_TOKENS)]
        pieces += [text[i:i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "image_url":
                image = hashlib.sha256(orjson.dumps(part.get("image_url"), option=orjson.OPT_SORT_KEYS)).hexdigest()
                pieces += [["image", image, i] for i in range(IMAGE_TOKENS)]
        for piece in pieces:
            prefix.add(piece, 1)
            if every is not None and prefix.tokens % every == 0:
                yield prefix.boundary()
        if every is None:
            yield prefix.boundary()


def _tokens(chars: int, images: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS + IMAGE_TOKENS * images


def _without_control(block: Any) -> Any:
    """What is cached is the content: moving a breakpoint does not change the prefix before it."""
    return {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block


def _ttl(block: Any) -> str | None:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if control is None:
        return None
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise Invalid("cache_control.type: Input should be 'ephemeral'")
    ttl = control.get("ttl", "5m")
    if ttl not in ANTHROPIC_TTL_S:
        raise Invalid("cache_control.ttl: Input should be '5m' or '1h'")
    extra = sorted(set(control) - {"type", "ttl"})
    if extra:
        raise Invalid(f"cache_control.{extra[0]}: Extra inputs are not permitted")
    return str(ttl)


def request_usage(cache: PromptCache, facts: ProviderFacts, api_key: str, payload: Mapping[str, Any],
                  parsed: ParsedRequest) -> CacheUsage | None:
    """The cache usage of one valid request, or None when its provider caches nothing on its own.
    Never more than the prompt the dialect counted."""
    scope = cache_scope(facts.host, api_key, parsed.model)
    if facts.wire_format is WireFormat.ANTHROPIC_MESSAGES:
        usage: CacheUsage | None = cache.anthropic_usage(scope, payload, parsed.model)
    else:
        messages = payload.get("messages")
        usage = cache.automatic_usage(facts.name, scope, messages if isinstance(messages, list) else [],
                                      payload.get("tools"))
    if usage is None:
        return None
    read = min(usage.read, parsed.prompt_tokens)
    return replace(usage, read=read, written=min(usage.written, parsed.prompt_tokens - read))
