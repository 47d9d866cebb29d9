"""The demo's own processes: ledger worker, sink, connectors; started and always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streams.settings import PROJECT_ROOT


class Child:
    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.args = args
        self.log = log_dir / f"demo-{name}.log"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_start = 0

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", *self.args],
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def logged(self) -> str:
        """What this run of the process has logged (the file is appended across runs)."""
        try:
            with self.log.open("rb") as fh:
                fh.seek(self.log_start)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def wait_http(url: str, child: Child, timeout: float, ready: str | None = None) -> None:
    """Until ``url`` answers 200 (and, if given, ``ready`` is in the child's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited; last lines of {child.log}:\n{child.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                if answer.status == 200 and (ready is None or ready in child.logged()):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{child.name} not ready after {timeout:.0f} s; see {child.log}")
