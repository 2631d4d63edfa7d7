"""The simulator's own API under `/_sim/`: fault rules and request counters, plus `/healthz`.

POST   /_sim/faults  {"fault": "fail=500", "host": "api.groq.com", "model": "...", "times": 2}
GET    /_sim/faults  the active rules
DELETE /_sim/faults  remove every rule (and forget fail-times counters)
GET    /_sim/stats   {"total", "by_host", "by_model", "by_status"}
DELETE /_sim/stats   reset the counters (and the recent bodies)
GET    /_sim/requests the last 200 request bodies received: [{"provider", "model", "body"}], oldest first

`/_sim/` answers loopback clients only (403 otherwise): tests and operators drive it from the
simulator's own machine, while the gateway and workers reach the provider routes over a network.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson

from shared.simulator.faults import FaultBook
from shared.simulator.stats import Stats


def is_loopback(client: Any) -> bool:
    """Whether an ASGI `client` (host, port) is a loopback IP address; None, a name or a bad value is not."""
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except (TypeError, ValueError):
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def handle_control(
    method: str, path: str, body: bytes, faults: FaultBook, stats: Stats, *, loopback: bool
) -> tuple[int, Any]:
    """(status, JSON-able answer) for a control or health request; `loopback`: the client is local."""
    if path == "/healthz" and method == "GET":
        return 200, {"status": "ok"}
    if not loopback:
        return 403, {"error": "the simulator's control API answers loopback clients only"}
    if path == "/_sim/faults":
        if method == "POST":
            return _add_rule(body, faults)
        if method == "GET":
            return 200, {"rules": [rule.describe() for rule in faults.rules]}
        if method == "DELETE":
            return 200, {"deleted": faults.clear()}
    if path == "/_sim/stats":
        if method == "GET":
            return 200, stats.snapshot()
        if method == "DELETE":
            stats.reset()
            return 200, {"reset": True}
    if path == "/_sim/requests" and method == "GET":
        return 200, {"requests": list(stats.recent)}
    return 404, {"error": f"no simulator endpoint {method} {path}"}


def _add_rule(body: bytes, faults: FaultBook) -> tuple[int, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return 400, {"error": "body must be JSON"}
    if not isinstance(data, dict) or not isinstance(data.get("fault"), str):
        return 400, {"error": 'body must be an object with a "fault" string'}
    host, model, times = data.get("host"), data.get("model"), data.get("times")
    if not (host is None or isinstance(host, str)) or not (model is None or isinstance(model, str)):
        return 400, {"error": '"host" and "model" must be strings when given'}
    if times is not None and (not isinstance(times, int) or isinstance(times, bool)):
        return 400, {"error": '"times" must be an integer when given'}
    try:
        rule = faults.add(data["fault"], host=host, model=model, times=times)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    return 201, rule.describe()
