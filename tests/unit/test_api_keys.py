"""The shape of the keys we issue, which lets a token of any other shape be refused without a lookup."""

from __future__ import annotations

import pytest

from shared.auth.keys import KEY_PREFIX, looks_like_api_key, new_api_key


def test_every_issued_key_has_the_shape_the_directory_accepts():
    assert all(looks_like_api_key(new_api_key()) for _ in range(2000))


@pytest.mark.parametrize("token", [
    "", "sk-ainf-", "sk-ainf-wrong", KEY_PREFIX + "a" * 42, KEY_PREFIX + "a" * 44, "sk-proj-" + "a" * 43,
    KEY_PREFIX + "a" * 42 + "=", KEY_PREFIX + "a" * 42 + "\n", " " + KEY_PREFIX + "a" * 43, "x" * 5000,
])
def test_a_token_of_another_shape_is_not_a_key(token: str):
    assert not looks_like_api_key(token)
