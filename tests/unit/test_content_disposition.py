"""Content-Disposition for a download: any file name is safe to send and reads back as it was stored."""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value

import pytest

from gateway.content_disposition import attachment


def read_back(header: str) -> tuple[list[str], str | None, str | None]:
    """Parameter names, the plain filename and the RFC 5987 one, as a standard parser reads them."""
    msg = Message()
    msg["content-disposition"] = header
    params = msg.get_params(header="content-disposition") or []
    plain = [v for k, v in params if k == "filename" and isinstance(v, str)]
    extended = [collapse_rfc2231_value(v) for k, v in params if k == "filename" and isinstance(v, tuple)]
    return [k for k, _ in params], plain[0] if plain else None, extended[0] if extended else None


def test_a_plain_ascii_name_is_sent_as_is():
    assert attachment("requests.jsonl") == 'attachment; filename="requests.jsonl"'


def test_a_non_ascii_name_gets_an_rfc_5987_form_and_an_ascii_fallback():
    header = attachment("文 données.jsonl")
    assert header == "attachment; filename=\"_ donn_es.jsonl\"; filename*=UTF-8''%E6%96%87%20donn%C3%A9es.jsonl"
    header.encode("latin-1")  # what Starlette does with header values
    assert read_back(header) == (["attachment", "filename", "filename"], "_ donn_es.jsonl", "文 données.jsonl")


@pytest.mark.parametrize(
    "name",
    ['a"; filename=evil.exe', "a\r\nSet-Cookie: x=1", "semi;colon", "back\\slash", "per%41cent", "tab\tdel\x7f",
     "", "\u2028line"],
)
def test_no_name_can_add_parameters_or_lines(name):
    header = attachment(name)
    assert header.isascii() and header.isprintable()
    names, plain, extended = read_back(header)
    assert names[:2] == ["attachment", "filename"] and len(names) <= 3
    assert plain is not None and not set(plain) & set('"\\;%')
    assert (extended if extended is not None else plain) == name
