"""Cached input tokens, cache writes and reasoning tokens: how adapters report them, what they cost,
and how receipts show them (without breaking receipts signed before they existed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.catalog.seed import load_seed
from shared.catalog.types import Model
from shared.providers.anthropic_messages import AnthropicMessagesAdapter
from shared.providers.openai_chat import OpenAIChatAdapter
from shared.providers.types import Completion, TokenSplit
from shared.receipts.types import Receipt, ReceiptStatus
from shared.routing.cost import actual_cost
from shared.signing import Signer, public_keys, verify

CLAUDE = Model(slug="claude@anthropic", provider="anthropic", provider_model_name=None, input_usd_per_mtok=3.0,
               output_usd_per_mtok=15.0, context_window=200_000, max_output_tokens=64_000, supports_streaming=True,
               supports_tools=True, supports_vision=True, aa_index=None, p50_ttft_ms=None, output_tokens_per_s=None,
               cached_input_usd_per_mtok=0.3, cache_write_usd_per_mtok=3.75)


# --- the cost formula ---------------------------------------------------------------------


def test_cached_and_written_tokens_are_billed_at_their_own_prices() -> None:
    tokens = TokenSplit(prompt=10_000, completion=500, cached=6_000, cache_write=3_000)
    expected = (Decimal(1_000) * Decimal("3.0") + Decimal(6_000) * Decimal("0.3") + Decimal(3_000) * Decimal("3.75")
                + Decimal(500) * Decimal("15.0")) / 1_000_000
    assert actual_cost(CLAUDE, tokens) == expected == Decimal("0.02355")


def test_a_cached_prompt_costs_less_than_the_same_prompt_uncached() -> None:
    cached = actual_cost(CLAUDE, TokenSplit(prompt=10_000, completion=500, cached=9_000))
    full = actual_cost(CLAUDE, TokenSplit(prompt=10_000, completion=500))
    assert cached < full
    assert full == (Decimal(10_000) * 3 + Decimal(500) * 15) / 1_000_000


def test_without_a_cached_price_cached_tokens_cost_the_input_price() -> None:
    plain = replace(CLAUDE, cached_input_usd_per_mtok=None, cache_write_usd_per_mtok=None)
    split = TokenSplit(prompt=10_000, completion=500, cached=6_000, cache_write=3_000)
    assert actual_cost(plain, split) == actual_cost(plain, TokenSplit(prompt=10_000, completion=500))


def test_reasoning_tokens_are_output_tokens() -> None:
    assert actual_cost(CLAUDE, TokenSplit(prompt=100, completion=900, reasoning=800)) == \
        actual_cost(CLAUDE, TokenSplit(prompt=100, completion=900))


def test_an_unpriced_model_costs_nothing() -> None:
    free = replace(CLAUDE, input_usd_per_mtok=None)
    assert actual_cost(free, TokenSplit(prompt=100, completion=10, cached=50)) == 0


def test_a_seeded_model_with_a_cached_price_never_bills_cached_tokens_at_the_input_price() -> None:
    rows = [m for m, _ in load_seed().models if m.cached_input_usd_per_mtok is not None and m.priced]
    assert len(rows) > 40
    for model in rows:
        assert model.input_usd_per_mtok is not None
        assert model.cached_input_usd_per_mtok is not None
        assert model.cached_input_usd_per_mtok < model.input_usd_per_mtok, model.slug
        full = actual_cost(model, TokenSplit(prompt=1_000_000, completion=0))
        cached = actual_cost(model, TokenSplit(prompt=1_000_000, completion=0, cached=1_000_000))
        assert cached == Decimal(str(model.cached_input_usd_per_mtok)) < full, model.slug


def test_claude_rows_follow_anthropics_documented_multipliers() -> None:
    claude = [m for m, _ in load_seed().models if m.provider == "anthropic"]
    assert claude
    for m in claude:
        assert m.input_usd_per_mtok is not None
        assert m.cached_input_usd_per_mtok == pytest.approx(0.1 * m.input_usd_per_mtok)
        assert m.cache_write_usd_per_mtok == pytest.approx(1.25 * m.input_usd_per_mtok)


# --- the token split a completion reports -------------------------------------------------


def completion(input_tokens: int, output_tokens: int, details: dict[str, Any]) -> Completion:
    return Completion(choices=[], input_tokens=input_tokens, output_tokens=output_tokens, upstream_id=None,
                      upstream_model=None, usage_details=details)


def test_the_split_is_read_from_openai_shaped_details() -> None:
    details = {"prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 10},
               "completion_tokens_details": {"reasoning_tokens": 40}}
    assert completion(2000, 50, details).tokens() == TokenSplit(2000, 50, cached=1024, cache_write=10, reasoning=40)


@pytest.mark.parametrize(
    "details",
    [{"prompt_tokens_details": {"cached_tokens": 5000, "cache_write_tokens": 5000},
      "completion_tokens_details": {"reasoning_tokens": 999}},
     {"prompt_tokens_details": {"cached_tokens": "12", "cache_write_tokens": True},
      "completion_tokens_details": {"reasoning_tokens": -1}},
     {"prompt_tokens_details": None, "completion_tokens_details": []}],
    ids=["more-than-the-whole", "not-counts", "not-objects"],
)
def test_a_split_is_never_more_than_its_whole(details: dict[str, Any]) -> None:
    split = completion(2000, 50, details).tokens()
    assert 0 <= split.cached + split.cache_write <= split.prompt and 0 <= split.reasoning <= split.completion
    assert split.uncached >= 0


def openai_answer(usage: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": "c", "object": "chat.completion", "model": "m", "usage": usage,
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "x"},
                                      "finish_reason": "stop"}]})


def test_openai_usage_keeps_cached_and_reasoning_tokens() -> None:
    usage = {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
             "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
             "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0}}
    parsed = OpenAIChatAdapter().parse(200, {}, openai_answer(usage))
    assert parsed.tokens() == TokenSplit(2006, 300, cached=1920, reasoning=256)


def test_deepseek_cache_hits_become_cached_tokens() -> None:
    usage = {"prompt_tokens": 1500, "completion_tokens": 20, "total_tokens": 1520,
             "prompt_cache_hit_tokens": 1400, "prompt_cache_miss_tokens": 100}
    parsed = OpenAIChatAdapter().parse(200, {}, openai_answer(usage))
    assert parsed.usage_details["prompt_tokens_details"] == {"cached_tokens": 1400}
    assert parsed.tokens().cached == 1400


def test_a_providers_own_cached_tokens_win_over_deepseeks_fields() -> None:
    usage = {"prompt_tokens": 1500, "completion_tokens": 20, "prompt_cache_hit_tokens": 1400,
             "prompt_tokens_details": {"cached_tokens": 1280}}
    assert OpenAIChatAdapter().parse(200, {}, openai_answer(usage)).tokens().cached == 1280


def test_a_deepseek_stream_reports_its_hits_too() -> None:
    reader = OpenAIChatAdapter().stream_reader(input_tokens_estimate=1)
    reader.event("", orjson.dumps({"id": "c", "model": "m", "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}]}).decode())
    reader.event("", orjson.dumps({"id": "c", "model": "m", "choices": [], "usage": {
        "prompt_tokens": 1500, "completion_tokens": 1, "prompt_cache_hit_tokens": 1024}}).decode())
    reader.event("", "[DONE]")
    assert reader.completion().tokens() == TokenSplit(1500, 1, cached=1024)


def anthropic_answer(**usage: int) -> bytes:
    return orjson.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
                         "content": [{"type": "text", "text": "x"}], "stop_reason": "end_turn",
                         "usage": {"input_tokens": 20, "output_tokens": 7, **usage}})


def test_anthropic_prompt_tokens_are_input_plus_cache_reads_and_writes() -> None:
    parsed = AnthropicMessagesAdapter().parse(
        200, {}, anthropic_answer(cache_read_input_tokens=1500, cache_creation_input_tokens=300))
    assert parsed.input_tokens == 20 + 1500 + 300
    assert parsed.usage_details == {"prompt_tokens_details": {"cached_tokens": 1500, "cache_write_tokens": 300}}
    assert parsed.tokens() == TokenSplit(1820, 7, cached=1500, cache_write=300)


def test_anthropic_usage_has_openais_shape_without_a_cache() -> None:
    parsed = AnthropicMessagesAdapter().parse(200, {}, anthropic_answer())
    assert parsed.usage_details == {"prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0}}
    assert parsed.tokens() == TokenSplit(20, 7)


def test_an_anthropic_stream_reads_the_cache_from_message_start() -> None:
    reader = AnthropicMessagesAdapter().stream_reader(input_tokens_estimate=1)
    events = [
        {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {
            "input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 0}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]
    for event in events:
        reader.event(str(event["type"]), orjson.dumps(event).decode())
    assert reader.completion().tokens() == TokenSplit(2005, 3, cached=2000)


# --- cache_control through the Anthropic translation ---------------------------------------


def anthropic_body(**body: Any) -> dict[str, Any]:
    request = AnthropicMessagesAdapter().build(url="https://api.anthropic.com/v1/messages", api_key="k",
                                               upstream_model="claude-sonnet-4-5", body=body)
    sent: dict[str, Any] = orjson.loads(request.body)
    return sent


EPHEMERAL = {"type": "ephemeral"}


def test_cache_control_on_parts_reaches_anthropics_blocks() -> None:
    sent = anthropic_body(messages=[
        {"role": "system", "content": [{"type": "text", "text": "Rules."},
                                       {"type": "text", "text": "Long manual.", "cache_control": EPHEMERAL}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Read this.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}, "cache_control": EPHEMERAL},
            {"type": "text", "text": "What is it?"}]},
    ])
    assert sent["system"] == [{"type": "text", "text": "Rules."},
                              {"type": "text", "text": "Long manual.", "cache_control": EPHEMERAL}]
    blocks = sent["messages"][0]["content"]
    assert blocks[0] == {"type": "text", "text": "Read this.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    assert blocks[1]["cache_control"] == EPHEMERAL and blocks[1]["type"] == "image"
    assert "cache_control" not in blocks[2]


def test_cache_control_on_a_tool_reaches_anthropics_tool() -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}},
            "cache_control": EPHEMERAL}
    sent = anthropic_body(messages=[{"role": "user", "content": "Hi"}], tools=[tool])
    assert sent["tools"] == [{"name": "lookup", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL}]


def test_without_cache_control_the_system_stays_one_string() -> None:
    sent = anthropic_body(messages=[{"role": "system", "content": [{"type": "text", "text": "A"}]},
                                    {"role": "system", "content": "B"}, {"role": "user", "content": "Hi"}])
    assert sent["system"] == "A\n\nB"


# --- receipts -----------------------------------------------------------------------------


def receipt(**split: int) -> Receipt:
    return Receipt(id="rcpt_1", job_id="job_1", tenant_id=uuid4(), status=ReceiptStatus.SUCCEEDED,
                   requested_model="claude@anthropic", model_slug="claude@anthropic", provider="anthropic",
                   upstream_model="claude", input_tokens=2000, output_tokens=50, estimated_cost_usd=None,
                   cost_usd=Decimal("0.001"), latency_ms=10, upstream_latency_ms=8, attempts=1, error_code=None,
                   routing=None, created_at=datetime(2026, 12, 1, tzinfo=UTC), **split)


def test_a_receipt_shows_its_token_split() -> None:
    body = receipt(cached_input_tokens=1500, cache_write_tokens=300, reasoning_tokens=20).public()
    assert body["usage"] == {"input_tokens": 2000, "output_tokens": 50, "cached_input_tokens": 1500,
                             "cache_write_tokens": 300, "reasoning_tokens": 20}


def test_a_receipt_without_a_split_keeps_the_shape_signed_before_it_existed() -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    old_shape = receipt().public()
    assert old_shape["usage"] == {"input_tokens": 2000, "output_tokens": 50}
    signed_before = signer.sign(old_shape)  # what a receipt signed before the split existed holds
    stored = replace(receipt(), signature=signed_before["signature"]["value"], signing_kid=signer.kid)
    # read back today (the new columns are 0), it is the same object and still verifies
    assert verify(stored.public(), public_keys(signer.jwks())) is None


def test_a_receipt_row_round_trips_its_split() -> None:
    r = receipt(cached_input_tokens=1500, cache_write_tokens=300, reasoning_tokens=20)
    assert Receipt.from_row(r.row()) == r
    old_row = {k: v for k, v in r.row().items()
               if k not in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens")}
    assert Receipt.from_row(old_row).cached_input_tokens == 0  # a commit held in Redis by an older worker
