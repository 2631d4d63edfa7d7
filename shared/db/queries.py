"""Named SQL queries, loaded once from `sql/<area>.sql`.

A file holds blocks that start with `-- name: <query_name>`; the text up to the next
such line is the query. No SQL is built from strings anywhere else.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).with_name("sql")
_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split a .sql file's text into {name: query}."""
    out: dict[str, str] = {}
    matches = list(_NAME_LINE.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end].strip()
        if m.group(1) in out:
            raise ValueError(f"query {m.group(1)!r} is defined twice")
        out[m.group(1)] = body
    return out


@cache
def area(name: str) -> dict[str, str]:
    """All queries of one area (`sql/<name>.sql`)."""
    return parse((SQL_DIR / f"{name}.sql").read_text(encoding="utf-8"))


def q(area_name: str, query: str) -> str:
    return area(area_name)[query]


def all_queries() -> dict[str, str]:
    """Every named query of every area, as `area.name` -> text (for the prepare test)."""
    out: dict[str, str] = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        for name, text in area(path.stem).items():
            out[f"{path.stem}.{name}"] = text
    return out
