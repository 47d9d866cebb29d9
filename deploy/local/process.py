"""Start and stop the stack's own processes: detached, logged, tracked by pid file.

`down` must stop only what `up` started, so every pid file also records the command line;
a pid that was reused by another program is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Children started by this process: kept so they are reaped on stop, not garbage-collected
# while still running.
_children: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    """The local stack cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class ManagedProcess:
    """One long-running program of the stack, known by its pid file."""

    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid if our process is alive, else None (a stale pid file is removed)."""
        try:
            recorded = self.pid_file.read_text().split("\n", 1)
            pid = int(recorded[0])
            marker = recorded[1].strip() if len(recorded) > 1 else ""
        except (OSError, ValueError):
            return None
        if _alive(pid):
            cmdline = _cmdline(pid)
            # An empty command line is a process between fork and exec: still ours.
            if not cmdline or (marker and marker in cmdline):
                return pid
            return None  # the pid was reused by another program: never ours to signal
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(
        self,
        argv: Sequence[str],
        *,
        marker: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> int:
        """Start ``argv`` detached from this terminal, output appended to the log file.

        ``marker`` is a string of the command line that identifies the process later.
        """
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # survives the terminal; a Ctrl-C here does not kill it
            )
        _children[proc.pid] = proc
        self.pid_file.write_text(f"{proc.pid}\n{marker}\n")
        return proc.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM, wait, then SIGKILL. Returns True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 10)
        child = _children.pop(pid, None)
        if child is not None:
            try:
                child.wait(timeout=15)  # reap: a dead child of ours must not linger as a zombie
            except subprocess.TimeoutExpired:
                _children[pid] = child
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL at once (a crash, for fault tests). Returns True if something was killed."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGKILL)
        _wait_gone(pid, 10)
        child = _children.pop(pid, None)
        if child is not None:
            child.wait(timeout=15)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child = _children.get(pid)
        if child is not None:
            child.poll()
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free_port(port: int, what: str, variable: str) -> None:
    if port_in_use(port):
        raise StackError(
            f"port 127.0.0.1:{port} needed by {what} is taken by another program; "
            f"stop it, or choose another port with {variable}=<port>"
        )


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    process: ManagedProcess | None = None,
    interval: float = 0.25,
) -> None:
    """Poll ``check`` until it is true; fail early if the process died, with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: S110 - not ready yet is expected while polling
            pass
        if process is not None and process.pid() is None:
            raise StackError(
                f"{what} exited during start-up; last lines of {process.log_file}:\n"
                f"{process.log_tail()}"
            )
        time.sleep(interval)
    tail = f"\nlast lines of {process.log_file}:\n{process.log_tail()}" if process else ""
    raise StackError(f"{what} was not ready after {timeout:.0f} s{tail}")


def run_checked(argv: Sequence[str], *, what: str, cwd: Path | None = None) -> str:
    """Run a set-up command to completion; raise StackError with its output if it fails."""
    try:
        done = subprocess.run(
            list(argv), cwd=cwd, capture_output=True, text=True, check=False, timeout=1800
        )
    except FileNotFoundError:
        raise StackError(f"{what}: {argv[0]} is not installed") from None
    if done.returncode != 0:
        out = (done.stdout + done.stderr).strip()[-3000:]
        raise StackError(f"{what} failed (exit {done.returncode}):\n{out}")
    return done.stdout
