"""`ainfera-dispatch tenant ...` refuses what Postgres cannot store, plainly and before connecting."""

from __future__ import annotations

import pytest

from shared.cli.main import main

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/unreachable"  # reaching it would be the bug


@pytest.mark.parametrize(
    "argv",
    [
        ["tenant", "create", "--name", "evil\u0000corp"],
        ["tenant", "set-policy", "--tenant", "00000000-0000-0000-0000-000000000001",
         "--policy", '{"banned_providers": ["x\\u0000"]}'],
        ["tenant", "set-policy", "--tenant", "00000000-0000-0000-0000-000000000001",
         "--policy", '{"banned_providers": ' + "[" * 100 + "]" * 100 + "}"],
    ],
    ids=["name_with_nul", "policy_with_nul", "policy_too_deep"],
)
def test_what_cannot_be_stored_is_a_clean_error_and_a_non_zero_exit(monkeypatch, argv):
    monkeypatch.setenv("AINFERA_DATABASE_URL", UNREACHABLE)
    with pytest.raises(SystemExit) as e:
        main(argv)
    message = e.value.code
    assert isinstance(message, str) and message.startswith("error: ")  # SystemExit(str): stderr, status 1
    assert "--name" in message or "--policy" in message
