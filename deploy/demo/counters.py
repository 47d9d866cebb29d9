"""Decisions and alerts of the demo's SKU, read from their topics as they are emitted."""

from __future__ import annotations

import threading
import time
from collections import Counter

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from schemas.codec import CodecError, codec_for
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_ALERTS, STOCK_DECISIONS


class OutcomeCounter:
    """Counts this SKU's decisions by outcome and alerts by kind, each id once."""

    def __init__(self, settings: Settings, sku: str) -> None:
        self.sku = sku
        self.codec = codec_for(settings)
        self.decisions: Counter[str] = Counter()
        self.alerts: Counter[str] = Counter()
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._consumer = Consumer(consumer_config(settings, f"demo-view-{time.time_ns()}"))
        parts = []
        for spec in (STOCK_DECISIONS, STOCK_ALERTS):
            meta = self._consumer.list_topics(spec.name, timeout=10).topics[spec.name]
            parts += [TopicPartition(spec.name, p, OFFSET_END) for p in meta.partitions]
        self._consumer.assign(parts)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(num_messages=1000, timeout=0.2):
                value = msg.value()
                if msg.error() is not None or value is None:
                    continue
                try:
                    name, record = self.codec.decode(value)
                except CodecError:
                    continue
                if record.get("sku") != self.sku:
                    continue
                if name.endswith("Decision") and record["decision_id"] not in self._seen:
                    self._seen.add(record["decision_id"])
                    self.decisions[record["outcome"]] += 1
                elif name.endswith("Alert") and record["alert_id"] not in self._seen:
                    self._seen.add(record["alert_id"])
                    self.alerts[record["kind"]] += 1
        self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
