"""A ledger worker subprocess for the bench: start, wait until ready, RSS, kill -9."""

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

from confluent_kafka import KafkaException

from streams.bench.config import BenchError
from streams.bench.kafka import admin
from streams.settings import Settings

READY = "Worker ready"


class BenchWorker:
    """`stockflow worker` with its own app id (consumer group and changelog) and web port."""

    def __init__(self, app_id: str, web_port: int, log_dir: Path, **env: str) -> None:
        self.app_id = app_id
        self.web_port = web_port
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"bench-{app_id}.log"
        self.env = {
            **os.environ,
            "STOCKFLOW_APP_ID": app_id,
            "STOCKFLOW_WORKER_WEB_PORT": str(web_port),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0

    def start(self) -> None:
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_ready(self, timeout: float) -> float:
        """Seconds from now until Faust logs "Worker ready" (partitions assigned, recovered)."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.proc is None or self.proc.poll() is not None:
                raise BenchError(f"worker exited early; log {self.log_path}:\n{self.tail()}")
            if READY in self._log():
                return time.monotonic() - began
            time.sleep(0.1)
        raise BenchError(f"worker not ready after {timeout:.0f} s; log {self.log_path}")

    def get(self, path: str) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return 0, None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("worker not started")
        return self.proc.pid

    def rss_mb(self) -> float:
        """Resident set size of the worker process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise BenchError(f"no VmRSS in /proc/{self.pid}/status")

    def kill(self) -> None:
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

    def _log(self) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(self._log_from)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self._log().splitlines()[-lines:])

    def delete_topics(self, settings: Settings) -> None:
        """Drop the worker's changelog and internal topics: bench tables are throw-away."""
        client = admin(settings.bootstrap)
        mine = [t for t in client.list_topics(timeout=10).topics if t.startswith(self.app_id)]
        if mine:
            for future in client.delete_topics(mine, operation_timeout=30).values():
                try:
                    future.result()
                except KafkaException as exc:
                    print(f"[bench] could not delete a bench topic: {exc}", file=sys.stderr)
