"""Verifying a tenant's chain as a customer would: only through the public API, trusting nothing.

Pages through `GET /v1/audit/{tenant}`, checks every link and hash, checks the latest signed
checkpoint against the chain and our published keys, and checks the signature of every
receipt. This is what `ainfera-dispatch audit verify-remote` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.audit.chain import verify_events
from shared.signing import public_keys, verify

PAGE = 500


@dataclass
class RemoteReport:
    tenant_id: str
    event_count: int = 0
    valid: bool = True
    failure_seq: int | None = None
    failure_reason: str | None = None
    checkpoint_seq: int | None = None
    checkpoint_valid: bool | None = None
    receipts_checked: int = 0
    bad_receipts: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.valid and self.checkpoint_valid is not False and not self.bad_receipts

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    r = client.get(path, params=params or None)
    if r.status_code >= 400:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:200]
        raise RuntimeError(f"GET {path}: {r.status_code} {message}")
    return r.json()


def verify_remote(base_url: str, api_key: str, tenant_id: str | None = None, *,
                  transport: httpx.BaseTransport | None = None) -> RemoteReport:
    base = base_url.rstrip("/").removesuffix("/v1")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=60,
                      transport=transport) as client:
        tenant = tenant_id or str(_get(client, "/v1/me")["tenant_id"])
        report = RemoteReport(tenant)
        keys = public_keys(_get(client, "/.well-known/jwks.json"))
        hashes: dict[int, str] = {}
        since, previous = 0, None
        while report.valid:
            body = _get(client, f"/v1/audit/{tenant}", since_seq=since, limit=PAGE)
            events = body.get("events") or []
            if not events:
                break
            count, broken = verify_events(events, start_hash=previous, first_seq=since + 1)
            report.event_count += count
            if broken is not None:
                report.valid, report.failure_seq, report.failure_reason = False, broken.seq, broken.reason
                break
            for e in events:
                hashes[int(e["seq"])] = str(e["event_hash"])
            since, previous = int(events[-1]["seq"]), str(events[-1]["event_hash"])

        checkpoint = _get(client, f"/v1/audit/{tenant}/checkpoint")
        report.checkpoint_seq = int(checkpoint["seq"])
        problem = verify(checkpoint, keys)
        matches = checkpoint["seq"] == 0 or hashes.get(int(checkpoint["seq"])) == checkpoint["event_hash"]
        report.checkpoint_valid = problem is None and (matches or not report.valid)
        if problem is None and not matches and report.valid:
            report.valid = False
            report.failure_seq = int(checkpoint["seq"])
            report.failure_reason = "the signed checkpoint does not match the chain"

        after: str | None = None
        while True:
            page = _get(client, "/v1/receipts", limit=1000, **({"after": after} if after else {}))
            for receipt in page["data"]:
                report.receipts_checked += 1
                why = verify(receipt, keys)
                if why is not None:
                    report.bad_receipts.append({"id": receipt["id"], "reason": why})
            if not page["has_more"]:
                break
            after = page["last_id"]
    return report
