"""The token store: the compacted topic ``stockflow.tokens.v1``, read whole and followed.

Every worker and connectors process keeps the topic's records in memory (by name and by
hash) and follows it from a thread. To bound how late a revocation can take effect, the
follower repeatedly asks Kafka for the topic's end offsets and reads up to them; the store
is *fresh as of* the moment it asked. A token is accepted only while the store is fresh as
of at most ``tokens_stale_s`` seconds ago (:meth:`TokenStore.stale_by`), so a revocation
that Kafka acknowledged is honoured by every process within that bound, or the process
refuses every token until it has caught up.

Records are Avro single-object encoded whatever ``STOCKFLOW_SCHEMA_REGISTRY_URL`` says: the
store must not depend on a registry to let an operator in.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from schemas.codec import CodecError, single_object_codec
from streams.kernel.access.tokens import TokenRecord, digest
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_config import consumer_config, producer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import API_TOKENS

log = logging.getLogger("stockflow.tokens")

TOKENS_GROUP_PREFIX = (
    "stockflow-tokens-"  # its consumers only assign(); a secure stack grants the prefix
)
POLL_S = 0.2  # the follower's idle wait between two end-offset queries


class TokenStore:
    """The tokens as last read; filled by :class:`TokenFollower` (or :meth:`apply`)."""

    def __init__(self) -> None:
        self._by_name: dict[str, TokenRecord] = {}
        self._by_hash: dict[str, TokenRecord] = {}
        self._lock = threading.Lock()
        self.fresh_at: float | None = None  # monotonic time the store was last at the end

    def apply(self, record: TokenRecord) -> None:
        with self._lock:
            old = self._by_name.get(record.name)
            if old is not None:
                self._by_hash.pop(old.sha256, None)
            self._by_name[record.name] = record
            self._by_hash[record.sha256] = record

    def lookup(self, token: str) -> TokenRecord | None:
        """The record of ``token`` (revoked ones too), None when unknown."""
        return self._by_hash.get(digest(token))

    def records(self) -> list[TokenRecord]:
        with self._lock:
            return sorted(self._by_name.values(), key=lambda r: r.name)

    def get(self, name: str) -> TokenRecord | None:
        return self._by_name.get(name)

    def mark_fresh(self, asked_at: float) -> None:
        self.fresh_at = asked_at

    def stale_by(self, now: float | None = None) -> float:
        """Seconds since the moment the store is known to hold every record; inf if never."""
        if self.fresh_at is None:
            return float("inf")
        return (time.monotonic() if now is None else now) - self.fresh_at

    async def fresh_after(self, moment: float, within_s: float) -> bool:
        """Wait until the store is fresh as of ``moment`` (it has read every record Kafka
        had then); False after ``within_s``."""
        deadline = time.monotonic() + within_s
        while self.fresh_at is None or self.fresh_at < moment:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True


class TokenFollower:
    """A thread reading ``stockflow.tokens.v1`` into a :class:`TokenStore` and following it."""

    def __init__(self, settings: Settings, store: TokenStore | None = None) -> None:
        self.settings = settings
        self.store = store if store is not None else TokenStore()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._codec = single_object_codec()

    def start(self) -> TokenStore:
        self._thread = threading.Thread(target=self._run, name="token-follower", daemon=True)
        self._thread.start()
        return self.store

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # Kafka away: the store goes stale, requests get 503
                log.warning("token store: following %s failed (%s); retrying", API_TOKENS.name, exc)
                self._stop.wait(1.0)

    def _follow(self) -> None:
        ensure_topics(self.settings, (API_TOKENS,))
        consumer = Consumer(
            consumer_config(
                self.settings,
                f"{TOKENS_GROUP_PREFIX}{uuid.uuid4().hex[:8]}",  # never joins: assign() only
                **{"fetch.wait.max.ms": 50, "enable.partition.eof": False},
            )
        )
        try:
            topic = consumer.list_topics(API_TOKENS.name, timeout=10).topics[API_TOKENS.name]
            parts = [TopicPartition(API_TOKENS.name, p, 0) for p in sorted(topic.partitions)]
            lows = {tp.partition: self._ends(consumer, tp)[0] for tp in parts}
            for tp in parts:
                tp.offset = lows[tp.partition]
            consumer.assign(parts)
            position = dict(lows)
            while not self._stop.is_set():
                asked = time.monotonic()
                ends = {tp.partition: self._ends(consumer, tp)[1] for tp in parts}
                deadline = asked + 10
                while any(position[p] < ends[p] for p in ends) and time.monotonic() < deadline:
                    self._consume(consumer, position, POLL_S)
                if all(position[p] >= ends[p] for p in ends):
                    self.store.mark_fresh(asked)
                self._consume(consumer, position, POLL_S)
        finally:
            consumer.close()

    @staticmethod
    def _ends(consumer: Consumer, tp: TopicPartition) -> tuple[int, int]:
        low, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
        return int(low), int(high)

    def _consume(self, consumer: Consumer, position: dict[int, int], timeout: float) -> None:
        msg = consumer.poll(timeout)
        if msg is None:
            return
        if msg.error():
            raise KafkaException(msg.error())
        partition, offset = msg.partition(), msg.offset()
        if partition is None or offset is None:
            return
        position[partition] = offset + 1
        value = msg.value()
        if value is None:
            return
        try:
            record = TokenRecord.from_avro(self._codec.decode_as(API_TOKENS.value_schema, value))
        except (CodecError, KeyError, TypeError, ValueError) as exc:
            log.warning(
                "%s[%d] offset=%d: not a token record, skipped (%s)",
                API_TOKENS.name,
                partition,
                offset,
                exc,
            )
            return
        self.store.apply(record)


def publish(settings: Settings, records: Iterable[TokenRecord], timeout: float = 30) -> None:
    """Write token records and wait until Kafka acknowledged every one (raises if not)."""
    ensure_topics(settings, (API_TOKENS,))
    codec = single_object_codec()
    producer = Producer(producer_config(settings))
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for record in records:
        value = codec.encode(API_TOKENS.value_schema, record.to_avro())
        producer.produce(
            API_TOKENS.name, key=record.name.encode(), value=value, on_delivery=delivered
        )
    left = producer.flush(timeout)
    if left or failures:
        raise KafkaException(
            f"{API_TOKENS.name}: {left} token record(s) not acknowledged within {timeout:.0f} s"
            + (f"; {'; '.join(failures)}" if failures else "")
        )


def read_all(settings: Settings, timeout: float = 30) -> TokenStore:
    """Every token record, read once to the end of the topic (for the command line)."""
    follower = TokenFollower(settings)
    store = follower.start()
    deadline = time.monotonic() + timeout
    try:
        while store.fresh_at is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{API_TOKENS.name} not read within {timeout:.0f} s")
            time.sleep(0.02)
    finally:
        follower.stop()
    return store
