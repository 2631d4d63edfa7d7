"""The exact chat URL of every seeded provider, as its documentation gives it."""

import pytest

from shared.catalog.seed import load_seed
from shared.catalog.types import WireFormat
from shared.catalog.urls import chat_url, route_via
from shared.errors import UpstreamMisconfigured

DOCUMENTED_CHAT_URLS = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "anthropic": "https://api.anthropic.com/v1/messages",
    "google": "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
    "xai": "https://api.x.ai/v1/chat/completions",
    "mistral": "https://api.mistral.ai/v1/chat/completions",
    "deepseek": "https://api.deepseek.com/chat/completions",
    "moonshot": "https://api.moonshot.ai/v1/chat/completions",
    "alibaba": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions",
    "groq": "https://api.groq.com/openai/v1/chat/completions",
    "cerebras": "https://api.cerebras.ai/v1/chat/completions",
    "sambanova": "https://api.sambanova.ai/v1/chat/completions",
    "fireworks": "https://api.fireworks.ai/inference/v1/chat/completions",
    "deepinfra": "https://api.deepinfra.com/v1/openai/chat/completions",
    "novita": "https://api.novita.ai/openai/v1/chat/completions",
    "together": "https://api.together.ai/v1/chat/completions",
    "typhoon": "https://api.opentyphoon.ai/v1/chat/completions",
    "byteplus": "https://ark.ap-southeast.bytepluses.com/api/v3/chat/completions",
}


def test_every_seeded_provider_has_its_documented_chat_url():
    providers = {p.name: p for p in load_seed().providers}
    assert set(providers) == set(DOCUMENTED_CHAT_URLS)
    for name, expected in DOCUMENTED_CHAT_URLS.items():
        p = providers[name]
        assert chat_url(p.base_url, p.chat_completions_path, p.wire_format) == expected, name


@pytest.mark.parametrize(
    ("base", "path", "fmt", "expected"),
    [
        ("https://api.openai.com/v1", None, WireFormat.OPENAI_CHAT, "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/", "chat/completions", "openai-chat", "https://api.openai.com/v1/chat/completions"),
        ("https://api.anthropic.com/v1", None, WireFormat.ANTHROPIC_MESSAGES, "https://api.anthropic.com/v1/messages"),
        ("https://api.deepseek.com", "/chat/completions", "openai-chat", "https://api.deepseek.com/chat/completions"),
        ("http://127.0.0.1:9/x", "/y", "openai-chat", "http://127.0.0.1:9/x/y"),
    ],
)
def test_chat_url_joins_without_dropping_segments(base, path, fmt, expected):
    assert chat_url(base, path, fmt) == expected


@pytest.mark.parametrize(
    ("base", "path"),
    [
        ("https://api.openai.com/v1", "/v1/chat/completions"),
        ("https://api.openai.com/v1/v1", None),
        ("https://api.groq.com/openai/v1/", "/v1/chat/completions"),
    ],
)
def test_chat_url_refuses_a_doubled_version_prefix(base, path):
    with pytest.raises(UpstreamMisconfigured, match="/v1/v1"):
        chat_url(base, path, "openai-chat")


@pytest.mark.parametrize("base", ["api.openai.com/v1", "ftp://x/v1", "https://x/v1?key=1"])
def test_chat_url_refuses_bases_that_are_not_plain_http_urls(base):
    with pytest.raises(UpstreamMisconfigured):
        chat_url(base, None, "openai-chat")


def test_route_via_keeps_the_real_host_and_path_for_the_simulator():
    url = "https://api.groq.com/openai/v1/chat/completions"
    assert route_via(url, None) == url
    assert route_via(url, "http://127.0.0.1:8100/") == "http://127.0.0.1:8100/api.groq.com/openai/v1/chat/completions"
