"""The OpenAI Files API for batches: upload (multipart, streamed), list, retrieve, content.

Input files are validated line by line while they stream in (see `shared.batches.lines`):
a bad line rejects the upload with a 400 naming it. Output and error files are rendered
from the batch's results when their content is read.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.auth import Owner
from gateway.content_disposition import attachment
from gateway.deps import GatewayState, gateway_state
from gateway.idempotency import PENDING_HASH, KeyClaim, check_stored, claim, key_of, request_hash
from gateway.multipart import Event, PartData, PartEnd, PartStart, multipart_events
from gateway.objects.batches import file_object
from gateway.objects.lists import list_object
from gateway.responses import JSONResponse
from shared.batches.results import error_lines, output_lines
from shared.batches.upload import UploadLimits, store_input_file
from shared.db.batches import get_batch
from shared.db.files import FileRow, delete_file, file_lines_after, get_file, list_files
from shared.db.tenants import KeyOwner
from shared.errors import InvalidRequest, NotFound
from shared.storable import check_storable

router = APIRouter()
PURPOSES = ("batch",)
_MAX_FIELD = 1024


async def _part_bytes(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The data of the current part, up to its end."""
    async for ev in events:
        if isinstance(ev, PartData):
            yield ev.data
        elif isinstance(ev, PartEnd):
            return


async def _small_field(events: AsyncIterator[Event], name: str) -> str:
    value = b""
    async for chunk in _part_bytes(events):
        value += chunk
        if len(value) > _MAX_FIELD:
            raise InvalidRequest(f"The '{name}' field is too long.", param=name)
    return value.decode("utf-8", "replace").strip()


def _check_purpose(purpose: str | None) -> None:
    if purpose is None:
        raise InvalidRequest("Missing required field 'purpose' (use \"batch\").", param="purpose")
    if purpose not in PURPOSES:
        raise InvalidRequest(f"Invalid purpose {purpose!r}: this gateway accepts files for \"batch\" only.",
                             code="invalid_value", param="purpose")


async def _upload(st: GatewayState, request: Request, tenant_id: Any) -> tuple[FileRow, str]:
    """Stream the multipart body into a stored, validated file. Returns it and its content digest."""
    events = multipart_events(request)
    purpose: str | None = None
    stored = None
    try:
        async for ev in events:
            if not isinstance(ev, PartStart):
                continue
            if ev.name == "purpose":
                purpose = await _small_field(events, "purpose")
                _check_purpose(purpose)
            elif ev.name == "file":
                if stored is not None:
                    raise InvalidRequest("Send one 'file' per upload.", param="file")
                settings = st.res.settings
                filename = ev.filename or "upload.jsonl"
                check_storable(filename, param="file")  # stored as text; any other character is fine
                stored = await store_input_file(
                    st.res.db, tenant_id=tenant_id, filename=filename,
                    content=_part_bytes(events),
                    limits=UploadLimits(max_bytes=settings.max_upload_bytes, max_lines=settings.max_batch_lines,
                                        max_line_bytes=settings.max_batch_line_bytes,
                                        max_tenant_bytes=settings.max_tenant_file_bytes),
                )
            else:
                raise InvalidRequest(f"Unknown form field {ev.name!r}; send 'file' and 'purpose'.", param=ev.name)
        if stored is None:
            raise InvalidRequest("Missing required field 'file'.", param="file")
        _check_purpose(purpose)
    except BaseException:
        if stored is not None:
            async with st.res.db.acquire() as conn:
                await delete_file(conn, stored.file.id)
        raise
    return stored.file, hashlib.sha256(f"{purpose}\n{stored.sha256}".encode()).hexdigest()


async def _digest_only(request: Request) -> str:
    """The digest an upload would have, without storing anything (for a repeated Idempotency-Key)."""
    purpose, content = "", hashlib.sha256()
    events = multipart_events(request)
    async for ev in events:
        if isinstance(ev, PartStart) and ev.name == "purpose":
            purpose = await _small_field(events, "purpose")
        elif isinstance(ev, PartStart) and ev.name == "file":
            async for chunk in _part_bytes(events):
                content.update(chunk)
    return hashlib.sha256(f"{purpose}\n{content.hexdigest()}".encode()).hexdigest()


@router.post("/v1/files")
async def upload_file(request: Request, owner: Owner) -> Response:
    # `owner` is a dependency: it is settled before a byte of the streamed body is read.
    st = gateway_state(request)
    key = key_of(request)
    held: KeyClaim | None = None
    if key is not None:
        got = await claim(st, owner.tenant.id, key, PENDING_HASH)
        if not isinstance(got, KeyClaim):
            if got.response_status is None:
                return check_stored(got, PENDING_HASH)  # still in progress: 409
            return check_stored(got, request_hash(request, await _digest_only(request)))
        held = got
    try:
        stored, digest = await _upload(st, request, owner.tenant.id)
    except BaseException:
        # A failed upload keeps nothing, not even the key: fix the file and retry with it.
        if held is not None:
            await held.release()
        raise
    response = JSONResponse(file_object(stored))
    if held is not None:
        return await held.finish(response, final_hash=request_hash(request, digest))
    return response


@router.get("/v1/files")
async def list_tenant_files(
    request: Request,
    owner: Owner,
    purpose: str | None = Query(default=None),
    limit: int = Query(default=100, ge=1, le=10_000),
) -> JSONResponse:
    async with gateway_state(request).res.db.acquire() as conn:
        files = await list_files(conn, owner.tenant.id, purpose, limit)
    return JSONResponse(list_object([file_object(f) for f in files], has_more=len(files) == limit))


async def _owned_file(request: Request, owner: KeyOwner, file_id: str) -> tuple[GatewayState, FileRow]:
    st = gateway_state(request)
    async with st.res.db.acquire() as conn:
        f = await get_file(conn, file_id, owner.tenant.id)
    if f is None or f.status != "processed":
        raise NotFound(f"No file '{file_id}'.", param="file_id")
    return st, f


@router.get("/v1/files/{file_id}")
async def retrieve_file(request: Request, owner: Owner, file_id: str) -> JSONResponse:
    _, f = await _owned_file(request, owner, file_id)
    return JSONResponse(file_object(f))


@router.get("/v1/files/{file_id}/content")
async def file_content(request: Request, owner: Owner, file_id: str) -> StreamingResponse:
    st, f = await _owned_file(request, owner, file_id)
    if f.kind == "input":
        body: AsyncIterator[bytes] = _input_lines(st, f.id)
    else:
        assert f.batch_id is not None
        async with st.res.db.acquire() as conn:
            batch = await get_batch(conn, f.batch_id, f.tenant_id)
        assert batch is not None
        body = output_lines(st.res.db, f.batch_id) if f.kind == "output" else (
            error_lines(st.res.db, f.batch_id, batch.status))
    return StreamingResponse(body, media_type="application/jsonl",
                             headers={"content-disposition": attachment(f.filename)})


async def _input_lines(st: GatewayState, file_id: str) -> AsyncIterator[bytes]:
    after = 0
    while True:
        async with st.res.db.acquire() as conn:
            rows = await file_lines_after(conn, file_id, after, 2000)
        if not rows:
            return
        yield b"".join(raw.encode() + b"\n" for _, raw in rows)
        after = rows[-1][0]
