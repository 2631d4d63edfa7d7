"""Drive HTTP load with wrk (C, epoll: it barely loads the machine), parse its figures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    p50_ms: float
    p99_ms: float
    rps: float
    errors: int
    requests: int = 0  # completed
    recorded: tuple[str, ...] = ()  # with `record_header`: "<status> <its value>" per answer, in order


def available() -> bool:
    return shutil.which("wrk") is not None


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def run(url: str, body: dict, headers: dict[str, str], *, connections: int, seconds: float,
        threads: int = 1, record_header: str | None = None) -> WrkResult:
    """`record_header`: write every answer's status and that header to a file (one thread only),
    returned as `recorded`, e.g. job ids to check against receipts."""
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    for k, v in {"Content-Type": "application/json", **headers}.items():
        lines.append(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}")
    record = None
    if record_header is not None:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as rf:
            record = rf.name
        lines.append(f"local out = io.open({json.dumps(record)}, 'w')")
        lines.append("function response(status, headers, body) out:write(status .. ' ' .. "
                     f"(headers[{json.dumps(record_header)}] or '-') .. '\\n') out:flush() end")
        threads = 1
    else:
        lines.append("function response(status, headers, body) "
                     "if status ~= 200 then errors = (errors or 0) + 1 end end")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write("\n".join(lines))
        script = f.name
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--latency", "-s", script, url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    done = re.search(r"(\d+) requests in", out)
    recorded: tuple[str, ...] = ()
    if record is not None:
        with open(record) as f:
            recorded = tuple(line.strip() for line in f if line.strip())
    return WrkResult(p50, p99, rps, int(non2xx.group(1)) if non2xx else 0, int(done.group(1)) if done else 0,
                     recorded)
