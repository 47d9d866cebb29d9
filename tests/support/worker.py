"""A real ledger worker process for integration and fault tests (start, kill -9, restart)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.processes import track


class WorkerProcess:
    """`stockflow worker` in a subprocess, with its own app id and web port."""

    def __init__(self, app_id: str, web_port: int, log_dir: Path, **env: str) -> None:
        self.app_id = app_id
        self.web_port = web_port
        self.log_path = log_dir / f"worker-{app_id}-{web_port}.log"
        self.env = {
            **os.environ,
            "STOCKFLOW_APP_ID": app_id,
            "STOCKFLOW_WORKER_WEB_PORT": str(web_port),
            # A new test worker ignores what earlier tests left in the shared input topic.
            "STOCKFLOW_OFFSET_RESET": "latest",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.first_offsets: dict[int, int] = {}  # input offsets before its first start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, timeout: float = 120) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        self.proc = track(
            subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._get("/health") is not None and self._assigned():
                return
            time.sleep(0.3)
        raise RuntimeError(f"worker not ready after {timeout} s:\n{self.log_tail()}")

    def _assigned(self) -> bool:
        # Faust logs this once partitions are assigned and tables recovered.
        try:
            return "Worker ready" in self.log_path.read_text(errors="replace")[-200_000:]
        except OSError:
            return False

    def stock(self, sku: str) -> dict[str, Any] | None:
        return self._get(f"/v1/stock/{sku}")

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def delete(self, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(self.url + path, method="DELETE")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as answer:
            return str(answer.read().decode())

    def _get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as answer:
                return json.loads(answer.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def kill(self) -> None:
        """kill -9: no flush, no commit, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
