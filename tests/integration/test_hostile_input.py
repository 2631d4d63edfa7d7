"""Hostile input through the real gateway: a 4xx in the OpenAI envelope naming the field, never a 500,
and nothing Postgres cannot store (U+0000, JSON nested past what the encoders take) reaches it."""

from __future__ import annotations

import email.message
from email.utils import collapse_rfc2231_value
from typing import Any

import asyncpg
import orjson
import pytest

from shared.settings import Settings
from tests.harness import ADMIN_KEY, new_tenant, running_gateway, running_worker

pytestmark = pytest.mark.integration

CHAT = {"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": "hello"}]}
ASYNC = {"Prefer": "respond-async"}
BOUNDARY = "hostile-input-boundary"


@pytest.fixture
async def system(settings: Settings, sim):
    tenant_id, key = await new_tenant(settings)
    async with running_worker(settings), running_gateway(settings) as client:
        yield client, {"Authorization": f"Bearer {key}"}, tenant_id


DEEP = "@deep@"  # where `with_deep` puts the nested value (orjson itself refuses to encode it)


def with_deep(value: Any, levels: int) -> bytes:
    """`value` as JSON, with the string DEEP replaced by objects and arrays nested `levels` deep."""
    deep = "".join("[" if i % 2 else '{"a":' for i in range(levels)) + '"x"' + "".join(
        "]" if i % 2 else "}" for i in reversed(range(levels)))
    return orjson.dumps(value).replace(f'"{DEEP}"'.encode(), deep.encode())


def refused(r, param: str | None, status: int = 400) -> dict:
    """The response is the OpenAI error envelope with this status and param."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "code", "param"} and err["type"] == "invalid_request_error"
    assert err["param"] == param, err
    return err


async def count(settings: Settings, table: str) -> int:
    conn = await asyncpg.connect(settings.session_database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


def batch_line(custom_id: str, text: str = "hello", **body: Any) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-oss-20b@groq", "messages": [{"role": "user", "content": text}], **body}}


def jsonl(*lines: dict | bytes) -> bytes:
    return b"".join((ln if isinstance(ln, bytes) else orjson.dumps(ln)) + b"\n" for ln in lines)


async def upload(client, auth, content: bytes, filename: str = "requests.jsonl"):
    return await client.post("/v1/files", headers=auth, data={"purpose": "batch"},
                             files={"file": (filename, content, "application/jsonl")})


async def raw_upload(client, auth, filename: bytes, content: bytes):
    """An upload whose part header carries `filename` exactly as given (httpx would escape it)."""
    b = BOUNDARY.encode()
    body = (b"--" + b + b'\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            b"Content-Type: application/jsonl\r\n\r\n" + content + b"\r\n--" + b + b"--\r\n")
    return await client.post("/v1/files", content=body,
                             headers={**auth, "content-type": f"multipart/form-data; boundary={BOUNDARY}"})


# --- U+0000 --------------------------------------------------------------------------------


@pytest.mark.parametrize("prefer", [{}, ASYNC], ids=["sync", "async"])
async def test_a_nul_character_in_a_chat_request_is_a_400_naming_the_field(system, settings, prefer):
    client, auth, _ = system
    body = {**CHAT, "messages": [{"role": "user", "content": "hi\u0000there"}]}
    err = refused(await client.post("/v1/chat/completions", json=body, headers={**auth, **prefer}),
                  "messages[0].content")
    assert "U+0000" in err["message"]
    keyed = {**CHAT, "metadata": {"k\u0000": "v"}}
    refused(await client.post("/v1/chat/completions", json=keyed, headers={**auth, **prefer}), "metadata")
    assert await count(settings, "jobs") == 0


async def test_a_nul_character_in_a_routing_explain_request_is_a_400(system):
    client, auth, _ = system
    body = {**CHAT, "messages": [{"role": "user", "content": "hi\u0000"}]}
    refused(await client.post("/v1/routing/explain", json=body, headers=auth), "messages[0].content")


@pytest.mark.parametrize(
    ("bad", "line_no", "param"),
    [
        (batch_line("b", text="nul\u0000here"), 2, "body.messages[0].content"),
        (batch_line("b\u0000"), 2, "custom_id"),
        (batch_line("b", metadata={"k": "v\u0000"}), 2, "body.metadata.k"),
    ],
    ids=["body", "custom_id", "body_metadata"],
)
async def test_a_nul_character_in_a_batch_line_is_a_400_naming_the_line(system, settings, bad, line_no, param):
    client, auth, _ = system
    r = await upload(client, auth, jsonl(batch_line("a"), bad, batch_line("c")))
    err = refused(r, param)
    assert err["message"].startswith(f"Line {line_no}:") and "U+0000" in err["message"]
    assert (await client.get("/v1/files", headers=auth)).json()["data"] == []
    assert await count(settings, "file_lines") == 0


async def test_a_nul_character_in_batch_metadata_is_a_400(system):
    client, auth, _ = system
    f = (await upload(client, auth, jsonl(batch_line("a")))).json()
    base = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    refused(await client.post("/v1/batches", headers=auth, json={**base, "metadata": {"k": "v\u0000"}}),
            "metadata.k")
    refused(await client.post("/v1/batches", headers=auth, json={**base, "metadata": {"\u0000": "v"}}),
            "metadata")
    assert (await client.get("/v1/batches", headers=auth)).json()["data"] == []


async def test_a_nul_character_in_a_tenant_name_is_a_400(system, settings):
    client, _, _ = system
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    before = await count(settings, "tenants")
    refused(await client.post("/v1/admin/tenants", json={"name": "evil\u0000corp"}, headers=admin), "name")
    assert await count(settings, "tenants") == before


async def test_a_nul_character_in_an_upload_file_name_is_a_400(system):
    client, auth, _ = system
    r = await raw_upload(client, auth, b"a\x00b.jsonl", jsonl(batch_line("a")))
    refused(r, "file")
    assert (await client.get("/v1/files", headers=auth)).json()["data"] == []


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/v1/receipts?after=%00", "after"),
        ("/v1/receipts?model=a%00b", "model"),
        ("/v1/receipts/rcpt%00", "receipt_id"),
        ("/v1/jobs/job%00", "job_id"),
        ("/v1/batches?after=%00", "after"),
        ("/v1/batches/batch%00", "batch_id"),
        ("/v1/files?purpose=%00", "purpose"),
        ("/v1/files/file%00", "file_id"),
        ("/v1/files/file%00/content", "file_id"),
    ],
)
async def test_a_nul_character_in_a_url_parameter_is_a_400_naming_it(system, url, param):
    client, auth, _ = system
    refused(await client.get(url, headers=auth), param)


# --- JSON nested deeper than anything can store ----------------------------------------------


@pytest.mark.parametrize("prefer", [{}, ASYNC], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("field", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": DEEP}}]}, "tools"),
        ({"colour": DEEP}, "colour"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "extra": DEEP}]}]},
         "messages"),
    ],
    ids=["tools", "unknown_field", "content_part"],
)
async def test_json_nested_hundreds_of_levels_deep_is_a_400(system, settings, prefer, field, param):
    client, auth, _ = system
    r = await client.post("/v1/chat/completions", content=with_deep({**CHAT, **field}, 300),
                          headers={**auth, **prefer, "content-type": "application/json"})
    err = refused(r, param)
    assert "64" in err["message"]
    assert await count(settings, "jobs") == 0


async def test_a_batch_line_nested_hundreds_of_levels_deep_is_a_400_naming_the_line(system):
    client, auth, _ = system
    r = await upload(client, auth, jsonl(batch_line("a"), with_deep(batch_line("b", tools=[DEEP]), 300)))
    err = refused(r, "body.tools")
    assert err["message"].startswith("Line 2:")


# --- numbers out of range ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("created_after=99999999999999", "created_after"),
        ("created_before=1e20", "created_before"),
        ("created_before=99999999999999999999999", "created_before"),
    ],
)
async def test_receipt_listing_refuses_timestamps_out_of_range(system, query, param):
    client, auth, _ = system
    refused(await client.get(f"/v1/receipts?{query}", headers=auth), param)


async def test_receipt_listing_takes_the_largest_timestamp_it_documents(system):
    client, auth, _ = system
    r = await client.get("/v1/receipts?created_before=253402300799", headers=auth)
    assert r.status_code == 200 and r.json()["data"] == []


@pytest.mark.parametrize("since_seq", ["1e23", "9223372036854775808", "-1"])
async def test_audit_listing_refuses_a_sequence_number_out_of_range(system, since_seq):
    client, auth, tenant_id = system
    refused(await client.get(f"/v1/audit/{tenant_id}?since_seq={since_seq}", headers=auth), "since_seq")
    ok = await client.get(f"/v1/audit/{tenant_id}?since_seq=9223372036854775807", headers=auth)
    assert ok.status_code == 200 and ok.json()["events"] == []


# --- file names on the way back out ------------------------------------------------------------


def disposition(header: str) -> tuple[list[str], str | None]:
    """The parameter names a standard parser finds in Content-Disposition, and the RFC 5987 file name."""
    msg = email.message.Message()
    msg["content-disposition"] = header
    params = msg.get_params(header="content-disposition") or []
    extended = [collapse_rfc2231_value(v) for k, v in params if k == "filename" and isinstance(v, tuple)]
    return [k for k, _ in params], extended[0] if extended else None


async def test_a_non_ascii_file_name_uploads_and_downloads(system):
    client, auth, _ = system
    content = jsonl(batch_line("a"))
    up = await upload(client, auth, content, filename="文.jsonl")
    assert up.status_code == 200, up.text
    assert up.json()["filename"] == "文.jsonl"
    down = await client.get(f"/v1/files/{up.json()['id']}/content", headers=auth)
    assert down.status_code == 200 and down.content == content
    header = down.headers["content-disposition"]
    assert header == "attachment; filename=\"_.jsonl\"; filename*=UTF-8''%E6%96%87.jsonl"
    assert disposition(header) == (["attachment", "filename", "filename"], "文.jsonl")


@pytest.mark.parametrize(
    "raw_name",
    [b'evil\\"; filename=other.exe; x=\\"y.jsonl', b"semi;colon=1.jsonl", b"tab\there\x7f.jsonl"],
    ids=["quote", "semicolon", "control"],
)
async def test_a_file_name_cannot_inject_content_disposition_parameters(system, raw_name):
    client, auth, _ = system
    up = await raw_upload(client, auth, raw_name, jsonl(batch_line("a")))
    assert up.status_code == 200, up.text
    stored = up.json()["filename"]
    down = await client.get(f"/v1/files/{up.json()['id']}/content", headers=auth)
    assert down.status_code == 200
    header = down.headers["content-disposition"]
    assert header.count(";") == 2 and header.count('"') == 2 and not any(c < " " for c in header)
    assert disposition(header) == (["attachment", "filename", "filename"], stored)


# --- one very long line --------------------------------------------------------------------


async def test_a_line_over_the_line_length_limit_is_refused_naming_it(settings: Settings, sim):
    normal = orjson.dumps(batch_line("r0000"))
    short = settings.model_copy(update={"max_batch_line_bytes": len(normal) + 10})
    _, key = await new_tenant(short)
    auth = {"Authorization": f"Bearer {key}"}
    async with running_gateway(short) as client:
        many = await upload(client, auth, jsonl(*[batch_line(f"r{i:04d}") for i in range(2000)]))
        assert many.status_code == 200, many.text
        assert many.json()["bytes"] == 2000 * (len(normal) + 1)
        long_line = batch_line("r0001", text="hello" + "x" * 11)  # 11 bytes longer than a normal line: 1 over
        assert len(orjson.dumps(long_line)) == short.max_batch_line_bytes + 1
        r = await upload(client, auth, jsonl(batch_line("r0000"), long_line, batch_line("r0002")))
        err = refused(r, "line 2")
        assert err["message"].startswith("Line 2:") and err["code"] == "line_too_long"
        huge = await upload(client, auth, jsonl(batch_line("r0000")) + b"x" * 5_000_000)
        assert refused(huge, "line 2")["code"] == "line_too_long"
        assert [f["id"] for f in (await client.get("/v1/files", headers=auth)).json()["data"]] == [many.json()["id"]]
