"""What Postgres can store: no U+0000 in text or jsonb, and JSON no deeper than our encoders take.

Checked once where a value enters (a JSON body, a batch line, a file name, a tenant name), so
the caller gets a 400 naming the field instead of a 500 from the database or from orjson
later. Which fields a request may have is not checked here; that is each endpoint's own rule.
"""

from __future__ import annotations

from typing import Any

from shared.errors import InvalidRequest

# Postgres refuses U+0000 in both `text` and `jsonb`, wherever it sits.
_NUL = "\x00"

# orjson refuses to encode past 254 levels, and what we store wraps a caller's value in a few
# levels of our own (a job's kwargs, a batch result line around a response). No real request
# comes near 64: a tool's JSON schema nests perhaps a dozen deep.
MAX_DEPTH = 64

# The path in a depth error stops after this many steps: enough to point, not a wall of "[0]".
_SHOWN_STEPS = 4

Path = tuple[str | int, ...]


def check_storable(value: Any, *, param: str | None = None, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a parsed JSON value holding U+0000 in a string or key, or nesting past `max_depth`.

    `param` names the value itself (a NUL error's param is the path from there, such as
    `messages[0].content`); a depth error names the top-level field that holds the nesting.
    The root is level 1. The walk keeps its own stack, so depth costs no Python recursion.
    """
    if isinstance(value, str):
        if _NUL in value:
            raise _nul_in_value(param, ())
        return
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        child_level = len(path) + 2
        for key, child in items:
            if isinstance(key, str) and _NUL in key:
                raise _nul_in_key(param, path)
            if isinstance(child, str):
                if _NUL in child:
                    raise _nul_in_value(param, (*path, key))
            elif isinstance(child, dict | list):
                if child_level > max_depth:
                    raise _too_deep(param, (*path, key), max_depth)
                stack.append((child, (*path, key)))


def path_text(param: str | None, path: Path) -> str:
    """`messages[0].content` style: names after a dot, indexes in brackets."""
    out = param or ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _nul_in_value(param: str | None, path: Path) -> InvalidRequest:
    where = path_text(param, path)
    subject = f"'{where}'" if where else "The value"
    return InvalidRequest(f"{subject} contains the character U+0000 (NUL), which cannot be stored; remove it.",
                          code="invalid_character", param=where or None)


def _nul_in_key(param: str | None, path: Path) -> InvalidRequest:
    where = path_text(param, path)
    subject = f"An object key in '{where}'" if where else "An object key"
    return InvalidRequest(f"{subject} contains the character U+0000 (NUL), which cannot be stored; remove it.",
                          code="invalid_character", param=where or None)


def _too_deep(param: str | None, path: Path, max_depth: int) -> InvalidRequest:
    field = path_text(param, path[:1])
    shown = path_text(param, path[:_SHOWN_STEPS]) + ("..." if len(path) > _SHOWN_STEPS else "")
    return InvalidRequest(f"'{field}' is nested more than {max_depth} levels deep (at {shown}); "
                          f"JSON may nest at most {max_depth} levels.", code="nesting_too_deep", param=field)
