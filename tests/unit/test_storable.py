"""What Postgres cannot store is refused with a 400 that names where it is: U+0000 anywhere in a
string or an object key, and JSON nested deeper than the limit."""

from __future__ import annotations

from typing import Any

import pytest

from shared.chat.request import parse_body
from shared.errors import InvalidRequest
from shared.storable import MAX_DEPTH, check_storable


def refusal(value: Any, **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as e:
        check_storable(value, **kwargs)
    assert e.value.status == 400
    return e.value


def nested_lists(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ({"messages": [{"role": "user", "content": "a\u0000b"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "\u0000"}]}]},
         "messages[0].content[0].text"),
        ({"tools": [[["ok", "not\u0000ok"]]]}, "tools[0][0][1]"),
        ({"metadata": {"k\u0000": "v"}}, "metadata"),
        ("\u0000", None),
    ],
)
def test_a_nul_character_is_refused_naming_its_path(value, param):
    err = refusal(value)
    assert err.param == param and err.code == "invalid_character" and "U+0000" in err.message


def test_the_path_starts_at_the_given_param():
    assert refusal({"k": "\u0000"}, param="metadata").param == "metadata.k"
    assert refusal("a\u0000", param="name").param == "name"
    assert refusal(["x", "\u0000"], param="body.stop").param == "body.stop[1]"


def test_clean_values_pass_untouched():
    value = {"model": "m", "messages": [{"role": "user", "content": "naïve ☕ \\u0000 written out"}],
             "n": 1, "t": 0.5, "ok": True, "none": None, "": [], "tools": [{"a": {"b": []}}]}
    check_storable(value)
    check_storable(nested_lists(MAX_DEPTH))


@pytest.mark.parametrize(
    ("value", "param"),
    [
        (nested_lists(MAX_DEPTH + 1), "[0]"),
        ({"tools": nested_lists(MAX_DEPTH)}, "tools"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "x": nested_lists(MAX_DEPTH)}]}]},
         "messages"),
    ],
)
def test_nesting_past_the_limit_is_refused_naming_the_top_level_field(value, param):
    err = refusal(value)
    assert err.param == param and err.code == "nesting_too_deep" and str(MAX_DEPTH) in err.message


def test_the_walk_is_iterative_whatever_the_depth():
    deep = nested_lists(50_000)  # a recursive walk would hit Python's recursion limit long before
    check_storable(deep, max_depth=100_000)
    deep[0][0].append("\u0000")
    assert refusal(deep, max_depth=100_000).param == "[0][0][1]"


def test_parse_body_refuses_what_cannot_be_stored():
    with pytest.raises(InvalidRequest) as e:
        parse_body(b'{"model": "m", "messages": [{"role": "user", "content": "a\\u0000"}]}')
    assert e.value.param == "messages[0].content"
    deep = b'{"tools": ' + b"[" * 300 + b"]" * 300 + b"}"
    with pytest.raises(InvalidRequest) as e:
        parse_body(deep)
    assert e.value.param == "tools" and e.value.code == "nesting_too_deep"
