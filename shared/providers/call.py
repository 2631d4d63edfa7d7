"""Calling one catalog model: the URL from the catalog row, the credential, the wire-format
adapter, the transport. Real traffic and fanout probes both go through here, so a probe
tests exactly what a caller's request would use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx

from shared.catalog.types import Model, Provider
from shared.catalog.urls import chat_url, route_via
from shared.errors import ProviderNotConfigured
from shared.providers.params import forwardable
from shared.providers.registry import adapter_for
from shared.providers.stream import StreamTarget
from shared.providers.transport import RetryPolicy, UpstreamResult, send
from shared.settings import Settings

# The only credential sent while an upstream override is set, whatever keys the environment holds.
SIMULATOR_KEY = "sk-simulated"


def has_credential(settings: Settings, provider: Provider) -> bool:
    return bool(settings.upstream_override or settings.provider_key(provider.api_key_env))


def provider_credential(settings: Settings, provider: Provider) -> str:
    """The key for `provider`. With an override set, the placeholder: the override address is not
    the provider (typically the simulator, over plain HTTP), so a real key must never go there."""
    if settings.upstream_override:
        return SIMULATOR_KEY
    key = settings.provider_key(provider.api_key_env)
    if key:
        return key
    raise ProviderNotConfigured(
        f"Provider '{provider.name}' has no credentials configured in this deployment (set {provider.api_key_env})."
    )


def withheld_credentials(settings: Settings) -> tuple[str, ...]:
    """The names (never the values) of the provider keys an upstream override keeps from being sent."""
    if not settings.upstream_override:
        return ()
    return tuple(sorted(name for name, key in settings.provider_keys.items() if key.get_secret_value()))


def provider_url(provider: Provider) -> str:
    """The real chat URL of a provider row (raises UpstreamMisconfigured for a broken row)."""
    return chat_url(provider.base_url, provider.chat_completions_path, provider.wire_format)


async def call_model(
    http: httpx.AsyncClient,
    settings: Settings,
    model: Model,
    provider: Provider,
    body: Mapping[str, Any],
    *,
    deadline_s: float | None = None,
    max_retries: int | None = None,
    stream: StreamTarget | None = None,
) -> UpstreamResult:
    """Send `body` (an OpenAI chat request, our extensions removed) to `model` upstream; with
    `stream`, ask for a streamed answer and hand its pieces to the target as they come."""
    url = route_via(provider_url(provider), settings.upstream_override)
    adapter = adapter_for(provider.wire_format)
    body, dropped = forwardable(model, provider, body)
    if stream is not None:
        stream.dropped = tuple(dropped)
    build = adapter.build_stream if stream is not None else adapter.build
    request = build(url=url, api_key=provider_credential(settings, provider),
                    upstream_model=model.upstream_model, body=body)
    policy = RetryPolicy.from_settings(settings)
    if deadline_s is not None:
        policy = dataclasses.replace(policy, deadline_s=min(policy.deadline_s, deadline_s))
    if max_retries is not None:
        policy = dataclasses.replace(policy, max_retries=max_retries)
    result = await send(http, adapter, request, policy=policy, stream=stream)
    return dataclasses.replace(result, dropped=tuple(dropped))
