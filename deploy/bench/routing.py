"""Cost of one routing decision: ``python -m deploy.bench.routing [calls]``.

A 5-line order over 20 locations with coordinates, capacities and a rate table, routed in
two cases: a location holds every line (the single-location rule decides), and none does
(the split search runs). Prints the median time per ``plan()`` call of 5 rounds, wall and
CPU. Pure Python, no broker: the order agent calls ``plan()`` once per order and attempt.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from streams.orders.routing import parse_routing, plan

LINES = 5
LOCATIONS = 20


def _setup(single: bool, rnd: random.Random) -> tuple[dict[str, dict[str, int]], Any, Any]:
    locs = [
        {
            "name": f"wh{i:02d}",
            "lat": rnd.uniform(43, 51),
            "lon": rnd.uniform(-1, 8),
            "daily_capacity": 1000,
        }
        for i in range(LOCATIONS)
    ]
    config = parse_routing(
        {
            "locations": locs,
            "zones": [{"name": "fr", "countries": ["FR"]}],
            "rates": [
                {"location": "*", "zone": "fr", "up_to_g": w, "cost": c}
                for w, c in ((1000, 590), (5000, 890), (30000, 1490))
            ],
            "weights": {f"sku{i}": 300 for i in range(LINES)},
        }
    )
    order = {
        "lines": [{"line_id": str(i), "sku": f"sku{i}", "qty": 2} for i in range(LINES)],
        "ship_to": {"country": "FR", "postal_code": "69003"},
    }
    available: dict[str, dict[str, int]] = {}
    for i in range(LINES):
        available[f"sku{i}"] = {
            str(loc["name"]): rnd.randint(0, 6) if single else (9 if rnd.random() < 0.3 else 0)
            for loc in locs
        }
        if single:
            available[f"sku{i}"]["wh13"] = 5
    return available, config, order


def _median_us(fn: Callable[[], object], calls: int, clock: Callable[[], float]) -> float:
    rounds = []
    for _ in range(5):
        start = clock()
        for _ in range(calls):
            fn()
        rounds.append((clock() - start) / calls * 1e6)
    return statistics.median(rounds)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    calls = int(args[0]) if args else 2000
    rnd = random.Random(7)
    print(f"plan(): {LINES}-line order, {LOCATIONS} locations, median of 5 x {calls} calls")
    for label, single in (("a location ships every line", True), ("split needed", False)):
        available, config, order = _setup(single, rnd)
        found = plan(order, available, config)

        def call(a: Any = available, c: Any = config, o: Any = order) -> object:
            return plan(o, a, c, used_capacity={"wh01": 3})

        wall = _median_us(call, calls, time.perf_counter)
        cpu = _median_us(call, calls, time.process_time)
        print(f"  {label:30} {wall:8.0f} us wall {cpu:8.0f} us cpu")
        print(f"    {found.reason if found else 'no plan'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
