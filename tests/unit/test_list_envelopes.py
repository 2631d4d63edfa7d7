"""OpenAI's list envelope as our list endpoints send it: keys in order, cursors from the page."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.objects.lists import cursor_page, list_object


@dataclass
class Row:
    id: str


def shape(r: Row) -> dict[str, str]:
    return {"id": r.id, "object": "thing"}


def test_a_whole_list_has_no_has_more_and_a_page_says_whether_more_follow():
    assert list(list_object([{"id": "a"}])) == ["object", "data"]
    assert list_object([], has_more=False) == {"object": "list", "data": [], "has_more": False}
    assert list(list_object([], has_more=True)) == ["object", "data", "has_more"]


def test_a_cursor_page_drops_the_probe_row_and_names_its_first_and_last_ids():
    page = cursor_page([Row("a"), Row("b"), Row("c")], 2, shape)
    assert list(page) == ["object", "data", "first_id", "last_id", "has_more"]
    assert page == {"object": "list", "data": [shape(Row("a")), shape(Row("b"))],
                    "first_id": "a", "last_id": "b", "has_more": True}
    assert cursor_page([Row("a")], 2, shape)["has_more"] is False


def test_an_empty_cursor_page_has_no_ids():
    assert cursor_page([], 5, shape) == {"object": "list", "data": [], "first_id": None, "last_id": None,
                                         "has_more": False}
