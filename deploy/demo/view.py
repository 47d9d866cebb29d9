"""What the demo shows while it runs: one status line, refreshed."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass
class Board:
    step: str = "starting"
    ledger: dict[str, int] = field(default_factory=dict)
    shops: dict[str, int | None] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        t = time.monotonic() - self.started
        ledger = " ".join(f"{c}={q}" for c, q in sorted(self.ledger.items())) or "-"
        shops = " ".join(f"{c}={'?' if q is None else q}" for c, q in sorted(self.shops.items()))
        decided = (
            f"accepted {self.decisions.get('accepted', 0)} "
            f"rejected {self.decisions.get('rejected', 0)}"
        )
        alerts = sum(self.alerts.values())
        return (
            f"[{t:5.1f}s] {self.step:<34} ledger: {ledger:<36} shops show: {shops:<28} "
            f"{decided}  alerts {alerts}"
        )

    def show(self) -> None:
        print(self.line(), file=sys.stdout, flush=True)
