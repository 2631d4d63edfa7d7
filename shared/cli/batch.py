"""The client behind `ainfera-dispatch batch`: upload a JSONL file, create a batch, follow it, fetch its results.

All of its HTTP lives here (a synchronous httpx client); argument parsing stays in `shared.cli.main`.
Progress and messages go to stderr, JSON to stdout, so stdout stays machine-readable.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
EXIT_OK, EXIT_UNSUCCESSFUL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_S = 1.0  # while the counts move
POLL_IDLE_MAX_S = 5.0  # backoff ceiling while nothing changes
POLL_ERROR_MAX_S = 15.0  # backoff ceiling while the gateway is unreachable or answers 429/5xx
POLL_MAX_FAILURES = 10  # consecutive failed polls before giving up (the batch keeps running)
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(60.0, connect=10.0, read=600.0)  # the gateway stores the last lines before answering
IDEMPOTENCY_KEY_MAX = 255 - len("/batch")

Json = dict[str, Any]


class CliError(Exception):
    """A failure reported as one line on stderr; `exit_code` becomes the process's exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_UNSUCCESSFUL) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class TransientError(CliError):
    """The gateway could not be reached, or answered 429 or 5xx: worth asking again later."""


# --- HTTP -----------------------------------------------------------------------------------


def connect(base_url: str, api_key: str) -> httpx.Client:
    """A client for the gateway at `base_url` (with or without a trailing `/v1`)."""
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        url = httpx.URL(root)
    except httpx.InvalidURL as e:
        raise CliError(f"--base-url {base_url!r} is not a valid URL ({e})", EXIT_USAGE) from None
    if url.scheme not in ("http", "https") or not url.host:
        raise CliError(f"--base-url {base_url!r} must be an http:// or https:// URL", EXIT_USAGE)
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {api_key}"}, timeout=TIMEOUT)


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _api_error(response: httpx.Response) -> CliError:
    """The gateway's OpenAI error envelope as one line (or the start of a body that is not one)."""
    response.read()
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        code = f" {error['code']}" if error.get("code") else ""
        message = f"{response.status_code}{code}: {error['message']}"
    else:
        message = f"{response.status_code} {response.reason_phrase}: {response.text or '(empty body)'}"
    cls = TransientError if response.status_code == 429 or response.status_code >= 500 else CliError
    return cls("the gateway answered " + _one_line(message))


@contextmanager
def _talking_to(client: httpx.Client) -> Iterator[None]:
    """Turn httpx's transport errors into one-line messages."""
    try:
        yield
    except httpx.TimeoutException as e:
        raise TransientError(f"timed out talking to the gateway at {client.base_url} ({type(e).__name__})") from None
    except httpx.RequestError as e:
        raise TransientError(f"cannot reach the gateway at {client.base_url}: {e or type(e).__name__}") from None


def _json(response: httpx.Response) -> Json:
    if response.is_error:
        raise _api_error(response)
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise CliError(f"the server at {response.url} did not answer with a JSON object; is --base-url a gateway?")
    return data


def request(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Json:
    with _talking_to(client):
        return _json(client.request(method, path, **kwargs))


def get_batch(client: httpx.Client, batch_id: str) -> Json:
    return request(client, "GET", f"/v1/batches/{batch_id}")


def idempotency_keys(key: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """Headers for the upload and for the creation: one key each, derived from the caller's."""
    if key is None:
        return {}, {}
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise CliError(f"--idempotency-key must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters", EXIT_USAGE)
    return {"idempotency-key": f"{key}/file"}, {"idempotency-key": f"{key}/batch"}


class _ReadCounter(io.FileIO):
    """A file opened for reading that reports its position after every read (httpx reads it in chunks)."""

    def __init__(self, path: Path, on_read: Callable[[int], None]) -> None:
        super().__init__(path, "r")
        self._on_read = on_read

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self._on_read(self.tell())
        return data


def _bytes_progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=console)


def upload(client: httpx.Client, path: Path, console: Console, headers: dict[str, str]) -> Json:
    """POST /v1/files, streaming the file from disk (multipart) with a progress bar of bytes sent."""
    with _bytes_progress(console) as progress:
        task = progress.add_task(f"uploading {path.name}", total=path.stat().st_size)
        with _ReadCounter(path, lambda sent: progress.update(task, completed=sent)) as f:
            return request(client, "POST", "/v1/files", data={"purpose": "batch"},
                           files={"file": (path.name, f, "application/jsonl")}, headers=headers,
                           timeout=UPLOAD_TIMEOUT)


def download(client: httpx.Client, file_id: str, dest: Path, console: Console) -> int:
    """Stream a file's content to `dest` (through `dest.part`, renamed at the end); returns its line count."""
    size = request(client, "GET", f"/v1/files/{file_id}").get("bytes")
    part = dest.with_name(dest.name + ".part")
    lines = 0
    try:
        with _talking_to(client), client.stream("GET", f"/v1/files/{file_id}/content") as response:
            if response.is_error:
                raise _api_error(response)
            with _bytes_progress(console) as progress, part.open("wb") as out:
                task = progress.add_task(f"downloading {dest.name}", total=size if isinstance(size, int) else None)
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    lines += chunk.count(b"\n")
                    progress.update(task, advance=len(chunk))
        part.replace(dest)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise CliError(f"cannot write {dest}: {e.strerror or e}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return lines


# --- following a batch ----------------------------------------------------------------------


def _counts(batch: Json) -> tuple[int, int, int]:
    c = batch.get("request_counts") or {}
    return int(c.get("completed", 0)), int(c.get("failed", 0)), int(c.get("total", 0))


def poll(client: httpx.Client, batch: Json, sleep: Callable[[float], None] = time.sleep) -> Iterator[Json]:
    """Yield the batch each time it is fetched, until its status is terminal.

    About once a second while its status or counts change; backing off to every POLL_IDLE_MAX_S
    while nothing does, and to POLL_ERROR_MAX_S while the gateway is unreachable or busy.
    """
    interval, failures = POLL_S, 0
    while batch["status"] not in TERMINAL:
        sleep(interval)
        try:
            latest = get_batch(client, batch["id"])
        except TransientError as e:
            failures += 1
            if failures >= POLL_MAX_FAILURES:
                raise CliError(f"{e.message}; batch {batch['id']} keeps running on the server") from None
            interval = min(max(interval, POLL_S) * 2, POLL_ERROR_MAX_S)
            continue
        moved = (latest["status"], _counts(latest)) != (batch["status"], _counts(batch))
        interval = POLL_S if moved or failures else min(interval * 1.5, POLL_IDLE_MAX_S)
        failures, batch = 0, latest
        yield batch


def follow(client: httpx.Client, batch: Json, console: Console, seen: list[Json]) -> Json:
    """Poll with a progress bar (finished requests over total) until terminal; `seen[0]` is the latest batch."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("requests"),
                  TimeElapsedColumn(), console=console) as progress:
        completed, failed, total = _counts(batch)
        task = progress.add_task(f"{batch['id']} {batch['status']}", total=total or None, completed=completed + failed)
        for latest in poll(client, batch):
            seen[0] = batch = latest
            completed, failed, total = _counts(batch)
            progress.update(task, description=f"{batch['id']} {batch['status']}", completed=completed + failed,
                            total=total or None)
    return batch


def outcome(batch: Json) -> str:
    """One line on how a finished batch ended."""
    completed, failed, total = _counts(batch)
    bid, status = batch["id"], batch["status"]
    if status == "completed":
        return f"batch {bid} completed: {completed} succeeded, {failed} failed"
    if status == "failed":
        errors = (batch.get("errors") or {}).get("data") or []
        reason = "; ".join(str(e.get("message")) for e in errors[:3] if isinstance(e, dict)) or "no reason given"
        return f"batch {bid} failed: {_one_line(reason)}"
    ran = f"{completed + failed} of {total} requests finished ({completed} succeeded)"
    verb = "expired" if status == "expired" else "was cancelled"
    return (f"batch {bid} {verb}: {ran}; fetch what there is with "
            f"`ainfera-dispatch batch results {bid} -o OUT.jsonl --errors ERR.jsonl`")


# --- commands -------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2), flush=True)


def submit(base_url: str, api_key: str, path: Path, *, wait: bool, metadata: dict[str, str] | None,
           idempotency_key: str | None) -> int:
    """`batch submit`: upload, create, optionally follow. Returns the exit status."""
    console = Console(stderr=True)
    file_headers, batch_headers = idempotency_keys(idempotency_key)
    if not path.is_file():
        raise CliError(f"{path} is not a file", EXIT_USAGE)
    with connect(base_url, api_key) as client:
        try:
            f = upload(client, path, console, file_headers)
        except KeyboardInterrupt:
            raise CliError("interrupted during the upload; no batch was created", EXIT_INTERRUPTED) from None
        except OSError as e:
            raise CliError(f"cannot read {path}: {e.strerror or e}", EXIT_USAGE) from None
        body: Json = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
        if metadata:
            body["metadata"] = metadata
        try:
            batch = request(client, "POST", "/v1/batches", json=body, headers=batch_headers)
        except KeyboardInterrupt:
            raise CliError(f"interrupted while creating the batch for {f['id']}: it may exist (see GET /v1/batches); "
                           "a retry with the same --idempotency-key cannot create it twice", EXIT_INTERRUPTED) from None
        _say(f"batch {batch['id']} created from {f['id']} ({_counts(batch)[2]} requests)")
        if not wait:
            _print_json(batch)
            return EXIT_OK
        seen = [batch]
        try:
            batch = follow(client, batch, console, seen)
        except KeyboardInterrupt:
            _say(f"interrupted: batch {batch['id']} keeps running on the server; "
                 f"fetch its results later with `ainfera-dispatch batch results {batch['id']} -o OUT.jsonl`")
            _print_json(seen[0])
            return EXIT_INTERRUPTED
    _print_json(batch)
    _say(outcome(batch))
    return EXIT_OK if batch["status"] == "completed" else EXIT_UNSUCCESSFUL


def results(base_url: str, api_key: str, batch_id: str, output: Path, errors: Path | None) -> int:
    """`batch results`: download the output file (and the error file when asked). Returns the exit status."""
    console = Console(stderr=True)
    for dest in (output, errors):
        if dest is not None and not dest.parent.is_dir():
            raise CliError(f"cannot write {dest}: {dest.parent} is not a directory", EXIT_USAGE)
    if errors is not None and errors.resolve() == output.resolve():
        raise CliError("-o and --errors must be different files", EXIT_USAGE)
    with connect(base_url, api_key) as client:
        batch = get_batch(client, batch_id)
        completed, failed, total = _counts(batch)
        if batch["status"] not in TERMINAL:
            raise CliError(f"batch {batch_id} has not finished: it is {batch['status']} "
                           f"({completed + failed} of {total} requests done); its results can be fetched "
                           "once it has finished")
        summary: Json = {"batch_id": batch_id, "status": batch["status"]}
        if batch.get("output_file_id"):
            summary["output"] = {"path": str(output), "lines": download(client, batch["output_file_id"], output,
                                                                       console)}
            _say(f"wrote {summary['output']['lines']} line(s) to {output}")
        if errors is not None and batch.get("error_file_id"):
            summary["errors"] = {"path": str(errors), "lines": download(client, batch["error_file_id"], errors,
                                                                       console)}
            _say(f"wrote {summary['errors']['lines']} line(s) to {errors}")
        elif errors is not None:
            _say(f"batch {batch_id} has no error file: no request failed; {errors} was not written")
        elif batch.get("error_file_id"):
            _say(f"batch {batch_id} also has an error file; fetch it with --errors")
    if "output" not in summary:
        raise CliError(f"batch {batch_id} ({batch['status']}) has no output file: none of its {total} requests "
                       "succeeded" + ("" if errors is not None or not batch.get("error_file_id")
                                      else "; fetch the error file with --errors"))
    _print_json(summary)
    return EXIT_OK


def run(command: Callable[[], int]) -> int:
    """The command's exit status, a CliError reported as one line on stderr."""
    try:
        return command()
    except CliError as e:
        _say(f"error: {e.message}")
        return e.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
