"""Records of some topics, read from their end as the demo plays, in a thread of their own."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from schemas.codec import CodecError, codec_for
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import TopicSpec


class TopicTail:
    """Hands every record of ``specs`` written from now on to :meth:`take` (in the tail's
    thread), until :meth:`stop`; records that do not decode are skipped."""

    def __init__(self, settings: Settings, specs: Sequence[TopicSpec], name: str) -> None:
        self.codec = codec_for(settings)
        self._stop = threading.Event()
        self._consumer = Consumer(consumer_config(settings, f"demo-{name}-{time.time_ns()}"))
        parts = []
        for spec in specs:
            meta = self._consumer.list_topics(spec.name, timeout=10).topics[spec.name]
            parts += [TopicPartition(spec.name, p, OFFSET_END) for p in meta.partitions]
        self._consumer.assign(parts)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def take(self, name: str, record: dict[str, Any]) -> None:
        raise NotImplementedError

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
                self.take(name, record)
        self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
