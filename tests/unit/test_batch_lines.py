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
    s = LineSplitter(max_lines=10)
    got = [ln for part in split_every(data, chunk) for ln in s.feed(part)] + s.finish()
    assert [(ln.line_no, ln.custom_id) for ln in got] == [(1, "a"), (3, "b"), (4, "c")]
    assert got[0].raw == line("a", "naïve ☕").decode()


def test_too_many_lines_is_refused():
    s = LineSplitter(max_lines=2)
    with pytest.raises(InvalidRequest) as e:
        s.feed(line("a") + b"\n" + line("b") + b"\n" + line("c") + b"\n")
    assert e.value.code == "too_many_lines"


def test_invalid_utf8_names_the_line():
    s = LineSplitter(max_lines=5)
    with pytest.raises(InvalidRequest, match="Line 2: not valid UTF-8"):
        s.feed(line("a") + b"\n\xff\xfe\n")


def test_a_valid_line_keeps_its_raw_text():
    raw = line("x").decode()
    assert validate_line(7, raw).raw == raw and validate_line(7, raw).line_no == 7
