"""Every subprocess a test starts, so none outlives the session and none is garbage-collected
while still running (which pytest reports as an unraisable ResourceWarning)."""

from __future__ import annotations

import subprocess

STARTED: list[subprocess.Popen[bytes]] = []


def track(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    STARTED.append(proc)
    return proc


def stop_all() -> list[int]:
    """Kill what is still running; returns their pids (a test forgot to stop them)."""
    leaked = []
    for proc in STARTED:
        if proc.poll() is None:
            leaked.append(proc.pid)
            proc.kill()
            proc.wait(10)
    STARTED.clear()
    return leaked
