"""With an upstream override set, no real provider credential leaves the process.

The simulator answers (in process); a recording transport in front of it keeps each request as
our code sent it, which is the thing under test here.
"""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from shared.catalog.types import Model, Provider, Stack, WireFormat
from shared.providers.call import SIMULATOR_KEY, call_model, provider_credential, withheld_credentials
from shared.settings import Settings
from shared.simulator.server import create_app

REAL_KEYS = {
    "GROQ_API_KEY": SecretStr("gsk_live_0123456789abcdefghijklmnopqrstuv"),
    "ANTHROPIC_API_KEY": SecretStr("sk-ant-api03-live-0123456789abcdefghijkl"),
}
GROQ = Provider(name="groq", wire_format=WireFormat.OPENAI_CHAT, base_url="https://api.groq.com/openai/v1",
                chat_completions_path=None, api_key_env="GROQ_API_KEY", stack=Stack.US, fast_tier=True)
ANTHROPIC = Provider(name="anthropic", wire_format=WireFormat.ANTHROPIC_MESSAGES,
                     base_url="https://api.anthropic.com/v1", chat_completions_path=None,
                     api_key_env="ANTHROPIC_API_KEY", stack=Stack.US, fast_tier=False)


def model(slug: str, upstream: str) -> Model:
    return Model(slug=slug, provider=slug.split("@")[1], provider_model_name=upstream, input_usd_per_mtok=1.0,
                 output_usd_per_mtok=1.0, context_window=128_000, max_output_tokens=8192,
                 supports_streaming=True, supports_tools=True, supports_vision=False, aa_index=40.0,
                 p50_ttft_ms=None, output_tokens_per_s=None)


TARGETS = [
    pytest.param(GROQ, model("llama-3.3-70b@groq", "llama-3.3-70b-versatile"), id="openai-chat"),
    pytest.param(ANTHROPIC, model("claude-haiku-4-5@anthropic", "claude-haiku-4-5"), id="anthropic-messages"),
]


class Recording(httpx.AsyncBaseTransport):
    """Keeps every request, then lets the in-process simulator answer it."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._sim = httpx.ASGITransport(app=create_app(latency_ms=0))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await self._sim.handle_async_request(request)


def wire_bytes(request: httpx.Request) -> bytes:
    return bytes(request.url.raw_path) + b"".join(k + b": " + v + b"\n" for k, v in request.headers.raw) + (
        request.content)


async def send_one(settings: Settings, provider: Provider, m: Model) -> httpx.Request:
    recording = Recording()
    async with httpx.AsyncClient(transport=recording) as http:
        result = await call_model(http, settings, m, provider,
                                  {"model": m.slug, "messages": [{"role": "user", "content": "hi"}]})
    assert result.completion.output_tokens >= 1
    (request,) = recording.requests
    return request


@pytest.mark.parametrize(("provider", "m"), TARGETS)
async def test_an_override_sends_the_placeholder_and_never_the_real_key(provider: Provider, m: Model) -> None:
    settings = Settings(upstream_override="http://sim.test", provider_keys=REAL_KEYS)
    request = await send_one(settings, provider, m)
    sent = wire_bytes(request)
    for secret in REAL_KEYS.values():
        assert secret.get_secret_value().encode() not in sent
    assert SIMULATOR_KEY.encode() in sent
    assert request.url.host == "sim.test"


@pytest.mark.parametrize(("provider", "m"), TARGETS)
def test_without_an_override_the_providers_own_key_is_used(provider: Provider, m: Model) -> None:
    settings = Settings(upstream_override=None, provider_keys=REAL_KEYS)
    assert provider_credential(settings, provider) == REAL_KEYS[provider.api_key_env].get_secret_value()
    with_override = Settings(upstream_override="http://sim.test", provider_keys=REAL_KEYS)
    assert provider_credential(with_override, provider) == SIMULATOR_KEY


def test_the_keys_an_override_withholds_are_named_never_shown() -> None:
    assert withheld_credentials(Settings(upstream_override=None, provider_keys=REAL_KEYS)) == ()
    assert withheld_credentials(Settings(upstream_override="http://sim.test", provider_keys={})) == ()
    named = withheld_credentials(Settings(upstream_override="http://sim.test", provider_keys=REAL_KEYS))
    assert named == ("ANTHROPIC_API_KEY", "GROQ_API_KEY")
