"""`stockflow bench --quick` runs every measurement and prints a number for each."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from streams.kernel.settings import Settings

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
