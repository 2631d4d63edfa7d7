"""JSON serialization (orjson) of arq jobs and results: nothing on the queue is pickled.

Pass `serialize` / `deserialize` as arq's `job_serializer` / `job_deserializer`
everywhere arq itself serializes (`WakingWorker` does it for its own connection).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from arq.jobs import SerializationError
from arq.worker import JobExecutionFailed

# datetimes and dataclasses would silently come back as str / dict: refuse them instead.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class JobFailedError(RuntimeError):
    """A failed job's exception as read back from JSON, when its class is not one we rebuild."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}" if message else error)
        self.error = error
        self.message = message


# Exceptions rebuilt from a stored failure so that arq's Job.result() raises them and
# Job.abort() recognises a cancellation, as they do with pickle. A fixed list: JSON never
# names a class to import.
_REBUILT: dict[str, type[BaseException]] = {
    "CancelledError": asyncio.CancelledError,
    "TimeoutError": TimeoutError,
    "JobExecutionFailed": JobExecutionFailed,
}


class NotJSONSafeError(SerializationError):
    """Job data that would not survive a JSON round trip unchanged.

    Job kwargs (and results) must be JSON-safe: dicts with str keys, lists or
    tuples, str, int (64-bit), float, bool and None. Enums and UUIDs are sent as
    their value and come back as that value. Everything else (datetime, bytes,
    Decimal, sets, dataclasses, pydantic models) must be converted by the
    caller, e.g. `model.model_dump(mode="json")`.
    """


def _refuse(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON-safe")


def _exception_or_refuse(value: Any) -> Any:
    # arq stores a failed job's exception as its result; keep its class and message.
    if isinstance(value, BaseException):
        return {"error": type(value).__name__, "message": str(value)}
    return _refuse(value)


def serialize_job_data(obj: dict[str, Any]) -> bytes:
    """Strict: what `enqueue` uses for job definitions; raises NotJSONSafeError."""
    try:
        return orjson.dumps(obj, default=_refuse, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise NotJSONSafeError(f"job data must be JSON-safe: {exc}") from exc


def serialize(obj: dict[str, Any]) -> bytes:
    """arq's job_serializer: strict JSON, except that exceptions (failed-job results)
    become `{"error": <class name>, "message": <str(exc)>}`.

    arq also uses it for cron jobs it enqueues itself and for stored results;
    a result that is not JSON-safe is replaced by arq with an error string.
    """
    try:
        return orjson.dumps(obj, default=_exception_or_refuse, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise NotJSONSafeError(f"job data must be JSON-safe: {exc}") from exc


def deserialize(data: bytes) -> dict[str, Any]:
    """arq's job_deserializer: the JSON object arq wrote (args come back as a list).

    In a failed job's result (`"s": false`), an exception stored by `serialize`
    comes back as an exception: CancelledError, TimeoutError and arq's
    JobExecutionFailed as themselves, any other class as JobFailedError.
    """
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise SerializationError(f"expected a JSON object, got {type(value).__name__}")
    result = value.get("r")
    if value.get("s") is False and isinstance(result, dict) and result.keys() == {"error", "message"}:
        value["r"] = _rebuild(str(result["error"]), str(result["message"]))
    return value


def _rebuild(error: str, message: str) -> BaseException:
    cls = _REBUILT.get(error)
    if cls is None:
        return JobFailedError(error, message)
    return cls(message) if message else cls()
