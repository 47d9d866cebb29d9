"""`stockflow` commands run as child processes (worker, sink, connectors; a bench module) by
the demo, the bench and the tests: started with their own environment and log file, waited
for, stopped.

A log file is appended across restarts, so readiness is looked for only in what the current
run has logged.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORKER_READY = "Worker ready"  # Faust logs it once partitions are assigned and tables recovered
CONNECTORS_READY = "caught up"

Popen = subprocess.Popen[bytes]


class ChildError(RuntimeError):
    """A child process exited early or was not ready in time; the message holds its log tail."""


class ChildProcess:
    """One `stockflow ARGS...` subprocess writing to ``log_path``."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        *,
        on_spawn: Callable[[Popen], Popen] | None = None,
        module: str = "streams.cli",
    ) -> None:
        self.name = name
        self.module = module  # run as `python -m MODULE ARGS...`
        self.args = args
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.on_spawn = on_spawn
        self.proc: Popen | None = None
        self._log_from = 0

    def start(self) -> None:
        """Launch the process (stopping a previous run first); does not wait."""
        if self.alive():
            self.stop()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.proc = self.on_spawn(proc) if self.on_spawn else proc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ChildError(f"{self.name} not started")
        return self.proc.pid

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> float:
        """Seconds until ``ready()`` holds; ChildError if the process exits or time runs out."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if not self.alive():
                code = self.proc.returncode if self.proc is not None else None
                raise ChildError(
                    f"{self.name} exited ({code}); last lines of {self.log_path}:\n{self.tail()}"
                )
            if ready():
                return time.monotonic() - began
            time.sleep(0.1)
        raise ChildError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def wait_serving(self, url: str, timeout: float, marker: str | None = None) -> float:
        """Seconds until ``url`` answers 200 and, if given, ``marker`` is in this run's log."""
        return self.wait_until(
            lambda: (
                (marker is None or marker in self.logged()) and http_json(url, timeout=2)[0] == 200
            ),
            timeout,
        )

    def logged(self) -> str:
        """What the current run has logged."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_from)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def rss_mb(self) -> float:
        """Resident set size, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise ChildError(f"no VmRSS in /proc/{self.pid}/status")

    def kill(self) -> None:
        """kill -9: no flush, no commit, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
LISTEN_PORTS_FROM = 10_000  # the lowest port handed out below the ephemeral range


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port() -> int:
    """A loopback TCP port nobody uses now (other stacks and benches share the host), below
    the kernel's ephemeral range: a port from that range, left free while its process
    restarts, can meanwhile become the local end of any outgoing connection, and the
    restarted process then cannot listen on it."""
    below = range(LISTEN_PORTS_FROM, max(_ephemeral_low(), LISTEN_PORTS_FROM + 1))
    for port in random.sample(below, min(200, len(below))):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:  # that range is taken: any port the kernel gives
        probe.bind(("127.0.0.1", 0))
        found: int = probe.getsockname()[1]
        return found


def http_json(
    url: str,
    method: str = "GET",
    body: Any = None,
    timeout: float = 30,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, decoded JSON body) of one loopback request, with ``token`` as its bearer
    token when given; (0, None) when nothing answered."""
    data = None if body is None else json.dumps(body).encode()
    headers = dict(headers or {})
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - loopback
            return answer.status, _json(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _json(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except json.JSONDecodeError:
        return None


class WorkerProcess(ChildProcess):
    """`stockflow worker` with its own app id (consumer group, changelog) and web port."""

    def __init__(
        self,
        app_id: str,
        web_port: int,
        log_dir: Path,
        *,
        log_name: str | None = None,
        on_spawn: Callable[[Popen], Popen] | None = None,
        token: str | None = None,
        **env: str,
    ) -> None:
        super().__init__(
            f"worker {app_id}",
            ["worker", "--loglevel", "info"],
            log_dir / (log_name or f"worker-{app_id}-{web_port}.log"),
            {"STOCKFLOW_APP_ID": app_id, "STOCKFLOW_WORKER_WEB_PORT": str(web_port), **env},
            on_spawn=on_spawn,
        )
        self.app_id = app_id
        self.web_port = web_port
        self._token = token

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def token(self) -> str:
        """The bearer token its API is called with: the local operator's unless given."""
        if self._token is None:
            from deploy.local.credentials import operator_token
            from streams.kernel.settings import load

            self._token = operator_token(load())
        return self._token

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds until the worker answers /health and has logged "Worker ready"."""
        return self.wait_serving(self.url + "/health", timeout, WORKER_READY)

    def get(self, path: str) -> tuple[int, Any]:
        return http_json(self.url + path, timeout=5, token=self.token)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        return http_json(self.url + path, method, body, token=self.token, headers=headers)
