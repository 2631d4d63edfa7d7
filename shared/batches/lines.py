"""Validating a batch input file line by line as it streams in; memory stays bounded by one chunk
and one line (at most `max_batch_line_bytes`).

A line is `{"custom_id": ..., "method": "POST", "url": "/v1/chat/completions", "body": {...}}`,
the body being a chat-completions request that passes the same validation as a synchronous
call. Any bad line rejects the whole file with a 400 that names the line (1-based, as
editors count). Blank lines are skipped. Duplicate custom_ids within a chunk are caught
here; across chunks the database's unique index catches them (see `shared.batches.upload`).
A model that does not exist is not an error here: that line fails when it runs. A key's
`allowed_models` is checked when the batch is created (`gateway/routes/batches.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from shared.chat.request import validate_chat_request
from shared.errors import InvalidRequest
from shared.storable import check_storable

BATCH_ENDPOINTS = frozenset({"/v1/chat/completions"})
MAX_CUSTOM_ID = 512
_LINE_KEYS = frozenset({"custom_id", "method", "url", "body"})


@dataclass(frozen=True, slots=True)
class RequestLine:
    line_no: int
    custom_id: str
    raw: str


def line_error(line_no: int, message: str, *, param: str | None = None,
               code: str = "invalid_batch_line") -> InvalidRequest:
    return InvalidRequest(f"Line {line_no}: {message}", code=code, param=param or f"line {line_no}")


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
        # custom_id goes to a text column, the body to jsonb when it runs; method and url were
        # compared with constants above.
        check_storable(custom_id, param="custom_id")
        check_storable(data.get("body"), param="body")
    except InvalidRequest as e:
        raise line_error(line_no, e.message, param=e.param) from e
    try:
        body = validate_chat_request(data.get("body"))
    except InvalidRequest as e:
        param = f"body.{e.param}" if e.param else "body"
        raise line_error(line_no, f"invalid body: {e.message}", param=param) from e
    if body.stream:
        # As OpenAI's batch endpoint: a batch line is answered in the output file, never streamed.
        raise line_error(line_no, "invalid body: stream is not supported in a batch; remove it or set it to false.",
                         param="body.stream")
    return RequestLine(line_no, custom_id, text)


class LineSplitter:
    """Bytes in, validated lines out. Carries at most one partial line between chunks.

    The partial line is kept as the pieces it arrived in and joined once, when its newline
    comes, and only each new chunk is searched for newlines: a long line costs time and
    memory in proportion to its length. A line longer than `max_line_bytes` is refused as
    soon as that many of its bytes have arrived, so the rest of it is never held.
    """

    def __init__(self, max_lines: int, *, max_line_bytes: int) -> None:
        self._pieces: list[bytes] = []
        self.buffered_bytes = 0  # of the partial line held between chunks
        self._line_no = 0
        self._max_lines = max_lines
        self._max_line_bytes = max_line_bytes
        self.request_lines = 0
        self._seen: dict[str, int] = {}

    def feed(self, chunk: bytes) -> list[RequestLine]:
        first = chunk.find(b"\n")
        if first < 0:
            self._hold(chunk)
            return []
        last = chunk.rfind(b"\n")
        raws = [b"".join([*self._pieces, chunk[:first]]) if self._pieces else chunk[:first]]
        if last > first:
            raws.extend(chunk[first + 1:last].split(b"\n"))
        self._pieces, self.buffered_bytes = [], 0
        lines = list(self._lines(raws))
        self._hold(chunk[last + 1:])
        return lines

    def finish(self) -> list[RequestLine]:
        rest = b"".join(self._pieces)
        self._pieces, self.buffered_bytes = [], 0
        return list(self._lines([rest])) if rest else []

    def _hold(self, piece: bytes) -> None:
        if not piece:
            return
        self.buffered_bytes += len(piece)
        if self.buffered_bytes > self._max_line_bytes:
            raise self._too_long(self._line_no + 1)
        self._pieces.append(piece)

    def _too_long(self, line_no: int) -> InvalidRequest:
        return line_error(line_no, f"longer than the limit of {self._max_line_bytes} bytes per line.",
                          code="line_too_long")

    def _lines(self, raws: list[bytes]) -> Iterator[RequestLine]:
        self._seen.clear()  # duplicates across chunks are the database's to find
        for raw in raws:
            self._line_no += 1
            if len(raw) > self._max_line_bytes:
                raise self._too_long(self._line_no)
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
