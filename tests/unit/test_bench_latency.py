"""The latency bench's collection of levels per offered load."""

from __future__ import annotations

import threading

from deploy.bench.latency import LevelLatencies


def test_a_load_whose_first_level_comes_after_the_quiet_window_is_still_measured() -> None:
    """Given a worker that emits its first level of a load 0.8 s after the load was sent
    (a pause longer than the 0.3 s quiet window), when the load's latencies are taken, then
    that level is counted (not "no level emitted"), and one of an earlier load is not."""
    levels = LevelLatencies.__new__(LevelLatencies)  # no Kafka: samples are appended here
    levels.samples = [(500, 1.0, 2.0)]  # from the previous load
    late = threading.Timer(0.8, lambda: levels.samples.append((1_000, 800.0, 810.0)))
    late.start()
    try:
        emitted, seen = levels.take(1_000, quiet=0.3, limit=5)
    finally:
        late.cancel()
    assert (emitted, seen) == ([800.0], [810.0])
    assert levels.samples == []
