"""CPU time a process has used, from /proc: for the benches' per-request and per-job CPU figures.

Clock-tick resolution (10 ms), so divide a long run's difference by many requests.
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def total_cpu_s(pids: list[int]) -> float:
    return sum(cpu_s(pid) for pid in pids)
