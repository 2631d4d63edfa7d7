"""The Content-Disposition header of a download, safe for any stored file name (RFC 6266).

A file name is the caller's text: any Unicode, quotes, semicolons, control characters.
HTTP header values are Latin-1 at best, and a bare quote or line break would add
parameters or lines to the header, so the name travels twice: percent-encoded UTF-8 in
`filename*` (RFC 5987), which clients that know it prefer, and an ASCII fallback in
`filename` with every character that could mislead a parser replaced by `_`.
"""

from __future__ import annotations

from urllib.parse import quote

# Legal inside a quoted-string, but what sloppy parsers split on or decode.
_FALLBACK_UNSAFE = frozenset('"\\;%')


def attachment(filename: str) -> str:
    """`attachment; filename="..."`, plus `filename*=UTF-8''...` when the name is not plain ASCII."""
    fallback = "".join(c if " " <= c <= "~" and c not in _FALLBACK_UNSAFE else "_" for c in filename)
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header
