"""`stockflow bench --quick` runs every measurement and prints a number for each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kernel.settings import Settings
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

EXPECTED = (
    "raw loop",
    "bare Faust agent",
    "ledger, ",
    "ledger / raw loop",
    "ledger / bare Faust agent",
    "ledger, 1,000 SKUs (2 workers, one group)",
    "two workers / one worker",
    "worker RSS",
    "recovery of",
    "latency produce→level p99 @ 500/s",
    "latency produce→level p99 @ 2,000/s",
    "latency produce→level p99 @ 10,000/s",
    "sale on Shopify → WooCommerce acknowledged p99 @ 100/s",
    "sink Kafka→ClickHouse",
    "changelog bytes per event",
)


def test_the_quick_bench_prints_a_number_in_every_row(local_stack: Settings) -> None:
    """Given the local stack,
    when `stockflow bench --quick --json` runs,
    then it exits 0 and every expected row is there with a numeric value: the raw loop, the
    bare Faust agent, the ledger (one and two workers) and its ratios, RSS and recovery,
    latencies at 500, 2,000 and 10,000 events/s, the sale on one fake shop acknowledged by
    the other, the sink and the changelog bytes; every order of the sale part reached the
    other shop, and the target rows carry a verdict."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)["rows"]
    for prefix in EXPECTED:
        found = [r for r in rows if r["measure"].startswith(prefix)]
        assert found, f"no row {prefix!r} in {[r['measure'] for r in rows]}"
        for row in found:
            assert isinstance(row["value"], int | float), row
    by_name = {r["measure"]: r for r in rows}
    sale = next(r for name, r in by_name.items() if name.startswith("sale on Shopify"))
    assert sale["extra"]["missing"] == 0 and sale["extra"]["orders"] > 0, sale
    for row in rows:
        if row["target"]:
            assert row["extra"].get("verdict") in ("yes", "no"), row


def test_an_unknown_part_is_refused_with_exit_code_2() -> None:
    """Given a typo in --only, when the bench starts, then it says so and exits 2."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", "--only", "ledgr"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown part" in done.stderr


def test_without_kafka_the_bench_says_so_in_one_line_and_exits_1(tmp_path: Path) -> None:
    """Given no broker at the configured port, when the bench starts, then it exits 1 with
    one line that says Kafka is not reachable and how to start it, not a flood of client
    connection errors."""
    env = {
        **os.environ,
        "STOCKFLOW_STATE_DIR": str(tmp_path),
        "STOCKFLOW_KAFKA_PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", "--quick", "--only", "raw"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 1
    assert "Kafka is not reachable" in done.stderr
    assert "stockflow stack up" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr[:2000]
