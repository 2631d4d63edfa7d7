"""The client behind `ainfera-dispatch batch`: upload a JSONL file, create a batch, follow it, fetch its results.

Its HTTP is `shared.cli.gateway_client`; argument parsing stays in `shared.cli.main`.
Progress and messages go to stderr, JSON to stdout, so stdout stays machine-readable.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from shared.cli.gateway_client import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNSUCCESSFUL,
    EXIT_USAGE,
    CliError,
    Json,
    TransientError,
    connect,
    download,
    get_batch,
    idempotency_keys,
    one_line,
    request,
    upload,
)

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
POLL_S = 1.0  # while the counts move
POLL_IDLE_MAX_S = 5.0  # backoff ceiling while nothing changes
POLL_ERROR_MAX_S = 15.0  # backoff ceiling while the gateway is unreachable or answers 429/5xx
POLL_MAX_FAILURES = 10  # consecutive failed polls before giving up (the batch keeps running)


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
        return f"batch {bid} failed: {one_line(reason)}"
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
        created = f"batch {batch['id']} created from {f['id']} ({_counts(batch)[2]} requests)"
        if not wait:
            _say(created)
            _print_json(batch)
            return EXIT_OK
        seen = [batch]
        try:
            _say(created)  # inside the try: a Ctrl-C just after this line still names the batch
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
