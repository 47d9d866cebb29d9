"""One topic read as a consumer group by the connectors, each record handed to a handler.

Order of work: poll one record, decode it, let the handler act on it (the channel
answered, or the failure was recorded), and only then count its offset as done; offsets are
committed every few seconds and at the end, so a crash re-reads at most those seconds,
which the handlers and the channels recognise (idempotent). An undecodable record is
dead-lettered and skipped.

A group with no committed offset starts at the *end* of the topic whatever
``STOCKFLOW_OFFSET_RESET`` says: a first start must not act again on everything the topic
ever held (cancel every order the ledger ever refused, or that was ever cancelled here).
The position taken is committed at once, so nothing after it is skipped later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.framework.kafka import STOPPED, KafkaPublisher, RecordDecoder
from schemas.codec import Codec
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import TopicSpec

log = logging.getLogger(__name__)

Handle = Callable[[dict[str, Any]], Awaitable[object]]  # what it returns is not read


class TopicFeed:
    """``spec``'s records, decoded, to ``handle`` (see the module's order of work)."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        spec: TopicSpec,
        what: str,
        handle: Handle,
        *,
        group_id: str,
        commit_every_s: float = 5.0,
        dead_letters: KafkaPublisher | None = None,
    ) -> None:
        self._spec = spec
        self._consumer = Consumer(consumer_config(settings, group_id))
        self._decoder = RecordDecoder(codec, dead_letters, what)
        self._handle = handle
        self._commit_every = commit_every_s
        self._stopping = False
        self._dirty = False
        self.assigned = False
        self.consumed = 0

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=10)
        fresh = []
        for tp, done in zip(partitions, committed, strict=True):
            if done.offset >= 0:
                tp.offset = done.offset
            else:
                _, tp.offset = consumer.get_watermark_offsets(tp, timeout=10)
                fresh.append(TopicPartition(tp.topic, tp.partition, tp.offset))
        consumer.assign(partitions)
        if fresh:
            consumer.commit(offsets=fresh, asynchronous=False)
        self.assigned = True
        log.info(
            "%s assigned: %s",
            self._spec.name,
            " ".join(f"[{tp.partition}] from={tp.offset}" for tp in partitions),
        )

    def stop(self) -> None:
        self._stopping = True
        self._decoder.stopping = True

    def commit(self) -> None:
        if not self._dirty:
            return
        try:
            self._consumer.commit(asynchronous=False)
            self._dirty = False
        except KafkaException as exc:
            log.warning("%s commit failed (retried later): %s", self._spec.name, exc)

    def close(self) -> None:
        self.commit()
        self._consumer.close()

    async def run(self) -> None:
        self._consumer.subscribe([self._spec.name], on_assign=self._on_assign)
        loop = asyncio.get_running_loop()
        last_commit = loop.time()
        while not self._stopping:
            msg = await asyncio.to_thread(self._consumer.poll, 0.5)
            if loop.time() - last_commit > self._commit_every:
                self.commit()
                last_commit = loop.time()
            if msg is None:
                continue
            if msg.error() is not None:
                log.warning("%s consumer error: %s", self._spec.name, msg.error())
                continue
            self.consumed += 1
            record = await self._decoder.decode(msg)
            if record is STOPPED:  # stopping during a registry outage: not read
                break
            if record is not None:
                await self._handle(record)
            self._dirty = True
