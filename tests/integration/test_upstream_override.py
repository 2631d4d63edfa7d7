"""A process started with an upstream override and real provider keys says so, loudly and once,
naming the variables and never their values."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from shared.resources import open_resources
from shared.settings import Settings

pytestmark = pytest.mark.integration

EVENT = "upstream_override_withholds_provider_keys"
SECRET = "gsk_live_0123456789abcdefghijklmnopqrstuv"


async def test_starting_with_an_override_and_real_keys_warns_once_naming_only_the_variables(settings: Settings):
    keyed = settings.model_copy(update={"provider_keys": {"GROQ_API_KEY": SecretStr(SECRET),
                                                          "OPENAI_API_KEY": SecretStr("sk-proj-live-42")}})
    with capture_logs() as logs:
        async with open_resources(keyed):
            pass
    warnings = [e for e in logs if e["event"] == EVENT]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
    assert warnings[0]["variables"] == ["GROQ_API_KEY", "OPENAI_API_KEY"]
    assert SECRET not in repr(logs) and "sk-proj-live-42" not in repr(logs)


async def test_no_warning_without_keys_or_without_an_override(settings: Settings):
    direct = settings.model_copy(update={"upstream_override": None,
                                         "provider_keys": {"GROQ_API_KEY": SecretStr(SECRET)}})
    with capture_logs() as logs:
        async with open_resources(settings):  # an override, no keys
            pass
        async with open_resources(direct):  # keys, no override
            pass
    assert [e for e in logs if e["event"] == EVENT] == []
