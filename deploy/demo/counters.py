"""Decisions and alerts of the demo's SKU, read from their topics as they are emitted."""

from __future__ import annotations

from collections import Counter
from typing import Any

from deploy.demo.tail import TopicTail
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_ALERTS, STOCK_DECISIONS


class OutcomeCounter(TopicTail):
    """Counts this SKU's decisions by outcome and alerts by kind, each id once."""

    def __init__(self, settings: Settings, sku: str) -> None:
        self.sku = sku
        self.decisions: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()
        self.units_accepted: Counter[str] = Counter()  # per channel
        self.refused: Counter[str] = Counter()  # lines, per channel
        self._seen: set[str] = set()
        super().__init__(settings, (STOCK_DECISIONS, STOCK_ALERTS), "view")

    def take(self, name: str, record: dict[str, Any]) -> None:
        if record.get("sku") != self.sku:
            return
        if name.endswith("Decision") and record["decision_id"] not in self._seen:
            self._seen.add(record["decision_id"])
            self.decisions[record["outcome"]] += 1
            channel = str(record.get("channel") or "")
            if record["outcome"] == "accepted":
                self.units_accepted[channel] += int(record["qty"])
            elif record["outcome"] == "rejected":
                self.refused[channel] += 1
        elif name.endswith("Alert") and record["alert_id"] not in self._seen:
            self._seen.add(record["alert_id"])
            self.alerts[record["kind"]] += 1
