"""Streaming multipart/form-data parsing: parts arrive as events, a file part's bytes as they come.

Starlette's `request.form()` reads a whole upload before returning; a million-line batch
file must not be held like that, so this feeds `python-multipart`'s push parser chunk by
chunk and yields events the caller can act on at once (e.g. validate and store lines).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from shared.errors import InvalidRequest, UnsupportedMediaType


@dataclass(frozen=True, slots=True)
class PartStart:
    name: str
    filename: str | None


@dataclass(frozen=True, slots=True)
class PartData:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


async def multipart_events(request: Request) -> AsyncIterator[Event]:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType("Upload files as multipart/form-data with a 'file' and a 'purpose' field.")
    events: list[Event] = []
    field: list[bytes] = []
    value: list[bytes] = []
    headers: dict[bytes, bytes] = {}

    def on_part_begin() -> None:
        headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.append(data[start:end])

    def on_header_end() -> None:
        headers[b"".join(field).lower()] = b"".join(value)
        field.clear()
        value.clear()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name")
        if name is None:
            raise InvalidRequest("A multipart part has no name.")
        filename = disposition.get(b"filename")
        events.append(PartStart(name.decode("utf-8", "replace"),
                                filename.decode("utf-8", "replace") if filename is not None else None))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(PartData(bytes(data[start:end])))

    def on_part_end() -> None:
        events.append(PartEnd())

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except InvalidRequest:
            raise
        except Exception as e:  # the parser's own errors: a malformed body, said plainly
            raise InvalidRequest(f"Malformed multipart body: {e}") from e
        for ev in events:
            yield ev
        events.clear()
    parser.finalize()
    for ev in events:
        yield ev
