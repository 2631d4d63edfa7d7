"""The gateway as the command line sees it: a synchronous httpx client, its errors as one line
for stderr, uploads and downloads with progress bars. `shared.cli.batch` drives it."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

EXIT_OK, EXIT_UNSUCCESSFUL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
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


def one_line(text: str, limit: int = 500) -> str:
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
    return cls("the gateway answered " + one_line(message))


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
