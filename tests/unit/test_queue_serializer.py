"""JSON serialization of jobs: what passes, what is refused, and that arq reads it back."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import orjson
import pytest
from arq.jobs import deserialize_job_raw, deserialize_result, serialize_job, serialize_result
from arq.worker import JobExecutionFailed
from hypothesis import given
from hypothesis import strategies as st

from shared.queue.names import QueueName
from shared.queue.serializer import (
    JobFailedError,
    NotJSONSafeError,
    deserialize,
    serialize,
    serialize_job_data,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_json_safe_kwargs_survive_an_arq_job_round_trip(kwargs: dict[str, Any]) -> None:
    raw = serialize_job("dispatch", (), kwargs, None, 1_700_000_000_000, serializer=serialize_job_data)
    function, args, back, job_try, enqueue_ms = deserialize_job_raw(raw, deserializer=deserialize)
    assert (function, list(args), back, job_try, enqueue_ms) == ("dispatch", [], kwargs, None, 1_700_000_000_000)


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        dt.date(2025, 1, 1),
        b"bytes",
        {1, 2},
        Decimal("1.5"),
        Point(1),
        2**64,
        {1: "int key"},
        ValueError("an exception is not job data"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_job_data_that_is_not_json_is_refused(value: Any) -> None:
    with pytest.raises(NotJSONSafeError, match="JSON-safe"):
        serialize_job_data({"k": {"value": value}})


def test_enum_values_are_sent_as_their_value() -> None:
    assert deserialize(serialize_job_data({"queue": QueueName.BATCH})) == {"queue": "ainfera:queue:batch"}


def _failed_result(exc: BaseException) -> bytes:
    raw = serialize_result("f", (), {}, 1, 1, False, exc, 2, 3, "ref", "q", "job-1", serializer=serialize)
    assert raw is not None
    return raw


def test_a_failed_jobs_exception_is_stored_as_json() -> None:
    raw = _failed_result(TimeoutError("took too long"))
    assert orjson.loads(raw)["r"] == {"error": "TimeoutError", "message": "took too long"}


@pytest.mark.parametrize(
    ("stored", "rebuilt"),
    [
        (asyncio.CancelledError(), asyncio.CancelledError),
        (TimeoutError("slow"), TimeoutError),
        (JobExecutionFailed("max 2 retries exceeded"), JobExecutionFailed),
        (KeyError("model"), JobFailedError),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_a_failed_jobs_exception_is_read_back_as_an_exception(
    stored: BaseException, rebuilt: type[BaseException]
) -> None:
    result = deserialize_result(_failed_result(stored), deserializer=deserialize)
    assert result.success is False
    assert type(result.result) is rebuilt
    assert str(stored) in str(result.result)


def test_an_unknown_exception_keeps_its_class_name_and_message() -> None:
    result = deserialize_result(_failed_result(KeyError("model")), deserializer=deserialize)
    assert (result.result.error, result.result.message) == ("KeyError", "'model'")


def test_a_stored_value_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(Exception, match="JSON object"):
        deserialize(b"[1, 2]")


def test_job_arguments_are_never_formatted_for_arq_logs() -> None:
    import arq.worker

    import shared.queue.worker  # noqa: F401  (importing it replaces arq's formatter)

    assert arq.worker.args_to_string(({"prompt": "secret"},), {"messages": ["secret"]}) == "..."
