"""`stockflow stack up|status|down` on a second, private stack: nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.local.process import _alive, port_in_use

pytestmark = pytest.mark.integration

PORTS = {
    "STOCKFLOW_KAFKA_PORT": 19192,
    "STOCKFLOW_KAFKA_CONTROLLER_PORT": 19193,
    "STOCKFLOW_CLICKHOUSE_PORT": 19100,
    "STOCKFLOW_CLICKHOUSE_HTTP_PORT": 19123,
    "STOCKFLOW_PROMETHEUS_PORT": 19190,
}


def _stockflow(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STOCKFLOW_STATE_DIR": str(state), **{k: str(v) for k, v in PORTS.items()}}
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _pids(state: Path) -> list[int]:
    return [int(p.read_text().split()[0]) for p in (state / "run").glob("*.pid")]


def test_stack_up_status_down_starts_everything_on_loopback_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    """Given an empty state folder and free ports, when `stack up` runs twice then `down`,
    then status reports Kafka, ClickHouse and Prometheus running, the second up is quick,
    and after down no process of the stack is alive and no port is listening."""
    state = tmp_path / "stack"
    first = _stockflow(state, "stack", "up", "--no-topics")
    assert first.returncode == 0, first.stderr
    pids = _pids(state)
    assert len(pids) == 3

    status = _stockflow(state, "stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for name, port in (("kafka", 19192), ("clickhouse", 19100), ("prometheus", 19190)):
        line = next(row for row in status.stdout.splitlines() if row.startswith(name))
        assert "running" in line and str(port) in line
        assert port_in_use(port)

    began = time.monotonic()
    second = _stockflow(state, "stack", "up", "--no-topics")
    second_took = time.monotonic() - began
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stderr
    assert sorted(_pids(state)) == sorted(pids)
    print(f"second `stack up` took {second_took:.1f} s")

    down = _stockflow(state, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids)
    assert not any(port_in_use(port) for port in PORTS.values())
    after = _stockflow(state, "stack", "status")
    assert after.returncode == 3
    assert "stopped" in after.stdout


def test_stack_up_names_the_port_and_the_variable_when_a_port_is_taken(tmp_path: Path) -> None:
    """Given another program listening on the Kafka port, when `stack up` runs,
    then it exits non-zero with a message naming the port and STOCKFLOW_KAFKA_PORT."""
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 19192))
        squatter.listen()
        result = _stockflow(tmp_path / "stack", "stack", "up", "--no-topics")
    assert result.returncode == 2
    assert "19192" in result.stderr and "STOCKFLOW_KAFKA_PORT" in result.stderr
    assert "Traceback" not in result.stderr
