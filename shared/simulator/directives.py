"""Fault directives: `[sim:...]` markers in the last user message, and control-API fault specs.

The last user message is the only part of a caller's request that survives the trip
through gateway and queue unchanged, so tests and demos steer the simulator with it.
Syntax (case-sensitive, anywhere in the text, several allowed):

    [sim:latency=MS]      answer after MS milliseconds instead of the default
    [sim:fail=CODE]       answer with HTTP CODE (400-599) in the provider's error style
    [sim:retry-after=S]   Retry-After seconds sent with fail=429 (default 1)
    [sim:fail-times=N]    with fail=...: fail only the first N identical requests
    [sim:hang]            never answer; wait until the client disconnects
    [sim:drip] [sim:drip=MS]  send headers, then the body one byte per MS (default 500) ms
    [sim:unsupported]     400 saying the model does not take a parameter sent (a provider that tightened a rule)
    [sim:malformed]       200 with a body that is not JSON
    [sim:truncated]       200 whose body stops halfway (connection closed early)
    [sim:tool]            answer with a tool call when the request offers tools
    [sim:nul]             the answer's text carries a U+0000, as a provider's may (jsonb cannot hold it)
    [sim:chunk-ms=MS]     a streamed answer sends one event every MS ms (default: the simulator's setting)
    [sim:cut-stream=N]    a streamed answer's connection is closed after N events (a provider dying mid-stream)

In prompts, unknown or ill-formed directives are ignored (a prompt may mention them);
control-API specs use the same names without brackets and are checked strictly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

_DIRECTIVE = re.compile(r"\[sim:([a-z][a-z-]*)(?:=([^\]\s]*))?\]")
_SPEC_SEPARATOR = re.compile(r"[\s,]+")
DEFAULT_DRIP_INTERVAL_MS = 500.0
DEFAULT_RETRY_AFTER_S = 1.0


@dataclass(frozen=True, slots=True)
class Directives:
    """What one request asks of the simulator; all fields unset means a normal answer."""

    latency_ms: float | None = None
    fail_status: int | None = None
    retry_after_s: float | None = None
    fail_times: int | None = None
    hang: bool = False
    drip_interval_ms: float | None = None
    malformed: bool = False
    unsupported: bool = False
    truncated: bool = False
    tool: bool = False
    nul: bool = False
    chunk_ms: float | None = None
    cut_stream_after: int | None = None

    @property
    def has_fault(self) -> bool:
        """True when the answer is anything but a normal, prompt, well-formed completion."""
        return bool(
            self.fail_status or self.hang or self.drip_interval_ms is not None or self.malformed or self.truncated
            or self.unsupported
            or self.cut_stream_after is not None
        )


NO_DIRECTIVES = Directives()


def parse_directives(text: str) -> Directives:
    """Directives found in a prompt. Ill-formed ones are ignored rather than refused."""
    if "[sim:" not in text:
        return NO_DIRECTIVES
    found = NO_DIRECTIVES
    for name, value in _DIRECTIVE.findall(text):
        try:
            found = _apply(found, name, value or None)
        except ValueError:
            continue
    return found


def parse_fault_spec(spec: str) -> Directives:
    """A control-API fault such as `fail=500`, `hang` or `fail=429 retry-after=3`. Raises ValueError."""
    found = NO_DIRECTIVES
    tokens = [token for token in _SPEC_SEPARATOR.split(spec.strip()) if token]
    if not tokens:
        raise ValueError("empty fault spec")
    for token in tokens:
        bare = token.removeprefix("[sim:").removesuffix("]")
        name, _, value = bare.partition("=")
        found = _apply(found, name, value or None)
    return found


def _apply(found: Directives, name: str, value: str | None) -> Directives:
    """Return `found` with one directive applied; ValueError for an unknown name or bad value."""
    changes: dict[str, Any]
    if name == "latency":
        changes = {"latency_ms": _non_negative(value)}
    elif name == "fail":
        status = int(_required(value))
        if not 400 <= status <= 599:
            raise ValueError(f"fail status {status} is not an HTTP error status")
        changes = {"fail_status": status}
    elif name == "retry-after":
        changes = {"retry_after_s": _non_negative(value)}
    elif name == "fail-times":
        changes = {"fail_times": int(_non_negative(value))}
    elif name == "drip":
        changes = {"drip_interval_ms": DEFAULT_DRIP_INTERVAL_MS if value is None else _non_negative(value)}
    elif name == "chunk-ms":
        changes = {"chunk_ms": _non_negative(value)}
    elif name == "cut-stream":
        changes = {"cut_stream_after": int(_non_negative(value))}
    elif name in ("hang", "malformed", "unsupported", "truncated", "tool", "nul") and value is None:
        changes = {name: True}
    else:
        raise ValueError(f"unknown directive {name!r}")
    return replace(found, **changes)


def _required(value: str | None) -> str:
    if value is None:
        raise ValueError("directive needs a value")
    return value


def _non_negative(value: str | None) -> float:
    number = float(_required(value))
    if not (math.isfinite(number) and number >= 0):
        raise ValueError("directive value must be a non-negative number")
    return number
