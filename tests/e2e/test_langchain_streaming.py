"""A popular framework's OpenAI client, used as its docs show, streaming through the gateway
unchanged: LangChain's `ChatOpenAI` (`langchain-openai`) with `.stream()`, usage and tool calls."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_openai import ChatOpenAI

pytestmark = pytest.mark.e2e

MODEL = "deepseek-v4-flash@deepinfra"


@pytest.fixture(scope="module")
def llm(system) -> ChatOpenAI:
    tenant = system.new_tenant("langchain")
    return ChatOpenAI(model=MODEL, base_url=f"{system.base_url}/v1", api_key=tenant["api_key"], max_retries=0,
                      stream_usage=True)


def test_chat_openai_streams_text_and_usage(llm):
    chunks = list(llm.stream("Tell me about the sea in two sentences."))
    assert len(chunks) > 2 and all(isinstance(c, AIMessageChunk) for c in chunks)
    whole = chunks[0]
    for c in chunks[1:]:
        whole += c
    assert whole.content
    assert whole.usage_metadata is not None and whole.usage_metadata["output_tokens"] > 0
    assert whole.response_metadata.get("model_name") == MODEL


def test_chat_openai_streams_a_tool_call(llm):
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    chunks = list(llm.bind_tools([get_weather]).stream("What is the weather in Porto? [sim:tool]"))
    whole = chunks[0]
    for c in chunks[1:]:
        whole += c
    assert [call["name"] for call in whole.tool_calls] == ["get_weather"]
    assert "city" in whole.tool_calls[0]["args"]
