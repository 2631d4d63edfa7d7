"""Profile the bulk worker of a bench stack with cProfile, for `bench/profile_compare.py`.

Put this directory first on PYTHONPATH and set PROFILE_DIR: every process started with that
environment imports this file at start-up, and the one whose command line holds every word of
PROFILE_ARGS (default `worker,batch`: a worker serving the batch queue) profiles itself (CPU
clock) and writes `worker-<pid>.prof` there when it exits.
Call counts per job are exact, so two checkouts can be compared on a machine too noisy for
CPU seconds to be.
"""

from __future__ import annotations

import os

_out = os.environ.get("PROFILE_DIR")
if _out:
    with open("/proc/self/cmdline", "rb") as f:
        _argv = f.read().split(b"\0")
    _wanted = os.environ.get("PROFILE_ARGS", "worker,batch").encode().split(b",")
    if all(word in _argv for word in _wanted):
        import atexit
        import cProfile
        import time

        _profile = cProfile.Profile(time.process_time)
        _profile.enable()

        def _dump(directory: str = _out) -> None:
            _profile.disable()
            _profile.dump_stats(os.path.join(directory, f"worker-{os.getpid()}.prof"))

        atexit.register(_dump)
