"""Path and query parameters Postgres could not take (U+0000) are refused before any route runs.

Ids and filters in a URL become text arguments of queries; checking them here, once for
every route, means a new route cannot forget to. Request bodies are checked where they are
parsed (`shared.chat.request.parse_body`, the batch line validator, the upload's file name).
"""

from __future__ import annotations

from starlette.requests import Request

from shared.errors import InvalidRequest
from shared.storable import check_storable


async def refuse_unstorable_params(request: Request) -> None:
    """An app-wide dependency: a 400 naming the parameter that holds U+0000."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_storable(value, param=name)
    if b"%00" not in request.scope.get("query_string", b""):
        return  # the only way a query string can carry U+0000; skip parsing it otherwise
    for name, value in request.query_params.multi_items():
        if "\x00" in name:
            raise InvalidRequest("A query parameter name contains the character U+0000 (NUL); remove it.",
                                 code="invalid_character")
        check_storable(value, param=name)
