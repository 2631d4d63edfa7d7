"""The one place upstream URLs are built, and redirected to the simulated provider.

`urllib.parse.urljoin` and `httpx.URL.join` drop path segments (a base of
`https://api.groq.com/openai/v1` joined with `chat/completions` loses `/v1`), so
neither is used. The product's history has a catalog where `/v1/v1/...` URLs broke
most rows; a URL with a repeated path segment is refused here rather than sent.
"""

from __future__ import annotations

from itertools import pairwise
from urllib.parse import urlsplit

from shared.catalog.types import WireFormat
from shared.errors import UpstreamMisconfigured

DEFAULT_CHAT_PATHS: dict[WireFormat, str] = {
    WireFormat.OPENAI_CHAT: "/chat/completions",
    WireFormat.ANTHROPIC_MESSAGES: "/messages",
}


def chat_url(base_url: str, chat_completions_path: str | None, wire_format: WireFormat | str) -> str:
    """Join base_url and the chat path (NULL path = the wire format's default) exactly."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UpstreamMisconfigured(f"base_url {base_url!r} is not an absolute http(s) URL")
    if parts.query or parts.fragment:
        raise UpstreamMisconfigured(f"base_url {base_url!r} must not carry a query or fragment")
    path = chat_completions_path or DEFAULT_CHAT_PATHS[WireFormat(wire_format)]
    full_path = parts.path.rstrip("/") + "/" + path.lstrip("/")
    segments = [s for s in full_path.split("/") if s]
    for a, b in pairwise(segments):
        if a == b:
            raise UpstreamMisconfigured(
                f"upstream path {full_path!r} repeats the segment '/{a}/{b}'; check base_url and "
                "chat_completions_path (is the version prefix in both?)"
            )
    return f"{parts.scheme}://{parts.netloc}{full_path}"


def route_via(url: str, override: str | None) -> str:
    """Point `url` at the simulated provider when `override` is set, keeping host and path.

    `https://api.groq.com/openai/v1/chat/completions` becomes
    `{override}/api.groq.com/openai/v1/chat/completions`: the simulator knows each real
    host and path, so a wrong host or path still fails there as it would upstream.
    """
    if not override:
        return url
    parts = urlsplit(url)
    return f"{override.rstrip('/')}/{parts.netloc}{parts.path}"
