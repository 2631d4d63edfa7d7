"""Validating a batch input file line by line as it streams in; memory stays bounded by one chunk.

A line is `{"custom_id": ..., "method": "POST", "url": "/v1/chat/completions", "body": {...}}`,
the body being a chat-completions request that passes the same validation as a synchronous
call. Any bad line rejects the whole file with a 400 that names the line (1-based, as
editors count). Blank lines are skipped. Duplicate custom_ids within a chunk are caught
here; across chunks the database's unique index catches them (see `shared.batches.upload`).
A model that does not exist is not an error here: that line fails when it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from shared.chat.request import validate_chat_request
from shared.errors import InvalidRequest

BATCH_ENDPOINTS = frozenset({"/v1/chat/completions"})
MAX_CUSTOM_ID = 512
_LINE_KEYS = frozenset({"custom_id", "method", "url", "body"})


@dataclass(frozen=True, slots=True)
class RequestLine:
    line_no: int
    custom_id: str
    raw: str


def line_error(line_no: int, message: str, *, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(f"Line {line_no}: {message}", code="invalid_batch_line", param=param or f"line {line_no}")


def validate_line(line_no: int, text: str) -> RequestLine:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise line_error(line_no, f"not valid JSON ({e}).") from e
    if not isinstance(data, dict):
        raise line_error(line_no, "each line must be a JSON object.")
    unknown = set(data) - _LINE_KEYS
    if unknown:
        raise line_error(line_no, f"unknown field(s) {', '.join(sorted(unknown))}; a line has custom_id, method, "
                                  "url and body.")
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise line_error(line_no, "custom_id is missing or not a non-empty string.", param="custom_id")
    if len(custom_id) > MAX_CUSTOM_ID:
        raise line_error(line_no, f"custom_id is longer than {MAX_CUSTOM_ID} characters.", param="custom_id")
    if data.get("method") != "POST":
        raise line_error(line_no, "method must be \"POST\".", param="method")
    if data.get("url") not in BATCH_ENDPOINTS:
        raise line_error(line_no, f"url must be one of {', '.join(sorted(BATCH_ENDPOINTS))}.", param="url")
    try:
        validate_chat_request(data.get("body"))
    except InvalidRequest as e:
        param = f"body.{e.param}" if e.param else "body"
        raise line_error(line_no, f"invalid body: {e.message}", param=param) from e
    return RequestLine(line_no, custom_id, text)


class LineSplitter:
    """Bytes in, validated lines out. Carries at most one partial line between chunks."""

    def __init__(self, max_lines: int) -> None:
        self._partial = b""
        self._line_no = 0
        self._max_lines = max_lines
        self.request_lines = 0
        self._seen: dict[str, int] = {}

    def feed(self, chunk: bytes) -> list[RequestLine]:
        data = self._partial + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return []
        self._partial = data[cut + 1:]
        return list(self._lines(data[:cut].split(b"\n")))

    def finish(self) -> list[RequestLine]:
        rest, self._partial = self._partial, b""
        return list(self._lines([rest])) if rest else []

    def _lines(self, raws: list[bytes]) -> Iterator[RequestLine]:
        self._seen.clear()  # duplicates across chunks are the database's to find
        for raw in raws:
            self._line_no += 1
            text = raw.rstrip(b"\r")
            if not text.strip():
                continue
            try:
                decoded = text.decode("utf-8")
            except UnicodeDecodeError as e:
                raise line_error(self._line_no, "not valid UTF-8.") from e
            line = validate_line(self._line_no, decoded)
            first = self._seen.get(line.custom_id)
            if first is not None:
                raise line_error(self._line_no, f"duplicate custom_id {line.custom_id!r} (first used on line {first}).",
                                 param="custom_id")
            self._seen[line.custom_id] = self._line_no
            self.request_lines += 1
            if self.request_lines > self._max_lines:
                raise InvalidRequest(f"The file has more than {self._max_lines} request lines.",
                                     code="too_many_lines", param="file")
            yield line
