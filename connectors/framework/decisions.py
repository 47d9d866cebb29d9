"""``stock.decisions.v1`` → the refusal policies: the ledger's refusals reach the channel.

Order of work: poll one record, decode it, let the :class:`RefusalHandler` act on it (the
channel answered, or the line was listed as an exception after the retries), and only then
count its offset as done; offsets are committed every few seconds and at the end, so a
crash re-reads at most those seconds of decisions, which the handler and the channels
recognise (idempotent). An undecodable record is dead-lettered and skipped.

A group with no committed offset starts at the *end* of the topic whatever
``STOCKFLOW_OFFSET_RESET`` says: a first start must not cancel every order the ledger ever
refused. The position taken is committed at once, so nothing after it is skipped later.
"""

from __future__ import annotations

import asyncio
import logging

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.framework.kafka import STOPPED, KafkaPublisher, RecordDecoder
from connectors.framework.refusals import RefusalHandler
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings

log = logging.getLogger(__name__)


class DecisionsSource:
    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        handler: RefusalHandler,
        *,
        group_id: str,
        commit_every_s: float = 5.0,
        dead_letters: KafkaPublisher | None = None,
    ) -> None:
        self._consumer = Consumer(consumer_config(settings, group_id))
        self._decoder = RecordDecoder(codec, dead_letters, "decisions")
        self._handler = handler
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
            topics.STOCK_DECISIONS.name,
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
            log.warning("%s commit failed (retried later): %s", topics.STOCK_DECISIONS.name, exc)

    def close(self) -> None:
        self.commit()
        self._consumer.close()

    async def run(self) -> None:
        self._consumer.subscribe([topics.STOCK_DECISIONS.name], on_assign=self._on_assign)
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
                log.warning("%s consumer error: %s", topics.STOCK_DECISIONS.name, msg.error())
                continue
            self.consumed += 1
            decision = await self._decoder.decode(msg)
            if decision is STOPPED:  # stopping during a registry outage: not read
                break
            if decision is not None and decision.get("outcome") == "rejected":
                await self._handler.handle(decision)
            self._dirty = True
