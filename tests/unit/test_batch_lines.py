"""Batch input lines are validated as they stream in, whatever the chunk boundaries."""

from __future__ import annotations

import orjson
import pytest

from shared.batches.lines import LineSplitter, validate_line
from shared.errors import InvalidRequest


def line(cid: str, text: str = "hi") -> bytes:
    return orjson.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "m@p", "messages": [{"role": "user", "content": text}]}})


def split_every(data: bytes, n: int) -> list[bytes]:
    return [data[i:i + n] for i in range(0, len(data), n)]


@pytest.mark.parametrize("chunk", [1, 3, 17, 64, 10_000])
def test_lines_survive_any_chunking_including_utf8_and_crlf(chunk):
    data = line("a", "naïve ☕") + b"\r\n\r\n" + line("b") + b"\n" + line("c")  # blank line, no final newline
    s = LineSplitter(max_lines=10, max_line_bytes=1 << 20)
    got = [ln for part in split_every(data, chunk) for ln in s.feed(part)] + s.finish()
    assert [(ln.line_no, ln.custom_id) for ln in got] == [(1, "a"), (3, "b"), (4, "c")]
    assert got[0].raw == line("a", "naïve ☕").decode()


def test_too_many_lines_is_refused():
    s = LineSplitter(max_lines=2, max_line_bytes=1 << 20)
    with pytest.raises(InvalidRequest) as e:
        s.feed(line("a") + b"\n" + line("b") + b"\n" + line("c") + b"\n")
    assert e.value.code == "too_many_lines"


def test_invalid_utf8_names_the_line():
    s = LineSplitter(max_lines=5, max_line_bytes=1 << 20)
    with pytest.raises(InvalidRequest, match="Line 2: not valid UTF-8"):
        s.feed(line("a") + b"\n\xff\xfe\n")


def test_a_valid_line_keeps_its_raw_text():
    raw = line("x").decode()
    assert validate_line(7, raw).raw == raw and validate_line(7, raw).line_no == 7


@pytest.mark.parametrize(
    ("custom_id", "text", "param"),
    [("a\u0000", "hi", "custom_id"), ("a", "nul \u0000 here", "body.messages[0].content")],
)
def test_a_nul_character_names_the_line_and_the_field(custom_id, text, param):
    with pytest.raises(InvalidRequest) as e:
        validate_line(3, line(custom_id, text).decode())
    assert e.value.message.startswith("Line 3:") and "U+0000" in e.value.message and e.value.param == param


def test_a_line_nested_too_deep_names_the_line_and_the_field():
    deep = '{"a":' * 300 + "1" + "}" * 300  # each level a valid tools entry on its own: only depth is wrong
    raw = line("a").decode().replace('"body":{', '"body":{"tools":[' + deep + "],", 1)
    with pytest.raises(InvalidRequest) as e:
        validate_line(4, raw)
    assert e.value.message.startswith("Line 4:") and e.value.param == "body.tools"


def test_a_line_just_over_the_length_limit_is_refused_naming_it():
    ok = line("a")
    s = LineSplitter(max_lines=10, max_line_bytes=len(ok))
    assert [ln.custom_id for ln in s.feed(ok + b"\n")] == ["a"]  # exactly at the limit is fine
    with pytest.raises(InvalidRequest) as e:
        s.feed(line("bb") + b"\n")  # one byte longer
    assert e.value.message.startswith("Line 2:") and e.value.param == "line 2" and e.value.code == "line_too_long"


def test_a_long_line_fed_in_small_chunks_is_refused_once_past_the_limit_with_the_buffer_bounded():
    limit, chunk = 1000, 7
    s = LineSplitter(max_lines=10, max_line_bytes=limit)
    assert s.feed(line("a") + b"\n")
    fed = 0
    with pytest.raises(InvalidRequest) as e:
        while True:
            s.feed(b"x" * chunk)
            fed += chunk
            assert s.buffered_bytes == fed <= limit  # what is held is the partial line, once
    assert fed + chunk > limit >= fed  # refused on the chunk that passed the limit, not later
    assert e.value.message.startswith("Line 2:")


def test_many_lines_under_the_length_limit_survive_any_chunking():
    data = b"\n".join(line(f"r{i}") for i in range(500)) + b"\n"
    s = LineSplitter(max_lines=1000, max_line_bytes=len(line("r499")))
    got = [ln for part in split_every(data, 333) for ln in s.feed(part)] + s.finish()
    assert [ln.custom_id for ln in got] == [f"r{i}" for i in range(500)] and s.buffered_bytes == 0


@pytest.mark.parametrize("raw", [line("a") + b"\x00", b"\x00", b" \x00 ", line("a").replace(b"hi", b"h\x00i")])
def test_a_raw_nul_byte_anywhere_in_a_line_is_invalid_json_so_the_stored_text_never_holds_one(raw):
    s = LineSplitter(max_lines=5, max_line_bytes=1 << 20)
    with pytest.raises(InvalidRequest, match="Line 1: not valid JSON"):
        s.feed(raw + b"\n")
