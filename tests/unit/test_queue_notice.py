"""The framing of completion notices: job id, newline, opaque payload bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.queue.notify import decode_notice, encode_notice

job_ids = st.text(min_size=1).filter(lambda s: "\n" not in s)


@given(job_ids, st.binary())
def test_any_payload_comes_back_with_its_job_id(job_id: str, payload: bytes) -> None:
    assert decode_notice(encode_notice(job_id, payload)) == (job_id, payload)


@pytest.mark.parametrize("job_id", ["", "two\nlines"])
def test_job_ids_that_cannot_be_framed_are_refused(job_id: str) -> None:
    with pytest.raises(ValueError):
        encode_notice(job_id, b"x")


@pytest.mark.parametrize("message", [b"no separator", b"\npayload without id"])
def test_messages_that_are_not_notices_are_refused(message: bytes) -> None:
    with pytest.raises(ValueError):
        decode_notice(message)
