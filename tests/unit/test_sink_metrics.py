"""The sink's metrics follow Prometheus conventions (promtool agrees)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import generate_latest

from streams.sink.metrics import SinkMetrics


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_the_sink_metrics_pass_promtool_check_metrics() -> None:
    """Given every sink metric with a sample, when the exposition is checked by promtool,
    then it reports no problem, and every name starts with stockflow_sink_ but the
    dead-letter counter all components share, which the sink serves too."""
    m = SinkMetrics()
    m.records.labels(topic="stock.movements.v1").inc()
    m.rows.labels(table="stock_movements").inc(10)
    m.batch_seconds.observe(0.02)
    m.batch_rows.observe(10)
    m.failures.labels(kind="unavailable").inc()
    m.retries.inc()
    m.buffered.set(5)
    m.paused.set(0)
    m.lag.labels(topic="stock.movements.v1").set(3)
    m.dead_letters.labels(component="sink", reason="undecodable").inc()
    m.commits.labels(result="ok").inc()
    text = generate_latest(m.registry)
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, check=False, timeout=30
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert checked.stdout.strip() == b"" and checked.stderr.strip() == b""
    names = {line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE")}
    shared = {n for n in names if n.startswith("stockflow_dead_letters_")}
    assert "stockflow_dead_letters_total" in shared
    own = names - shared
    assert own and all(n.startswith("stockflow_sink_") for n in own)
