"""The ClickHouse sink: Kafka output topics → ClickHouse tables, at least once, duplicate-proof.

Commit order (the one rule that makes the sink lossless):

1. consume records of the four output topics and the audit topic into the buffer (arrival
   order);
   a record that cannot be decoded or mapped is produced to the dead-letter topic and kept
   in the buffer as an empty entry, so its offset is committed in order like the others;
2. when the buffer holds ``batch_rows`` rows or its oldest record is ``max_age`` seconds
   old, take its oldest records as a batch and INSERT them, table by table;
3. wait for ClickHouse to acknowledge every insert (rows it refuses are dead-lettered);
4. wait for Kafka to acknowledge every dead letter of the batch;
5. only then commit, synchronously, offset+1 of the batch's last record per partition;
6. forget the batch.

A crash anywhere before 5 replays the batch: the tables are ReplacingMergeTree keyed by
record id and every report dedupes at query time, so a replay changes no figure.
ClickHouse unavailable: step 2 is retried with exponential backoff (full jitter) while the
consumer keeps filling the buffer; at ``capacity`` rows the assigned partitions are paused
(and resumed once the buffer drains), so memory stays bounded and nothing is dropped or
committed ahead. The same holds when ClickHouse is up but cannot take rows now (read-only,
disk full, refusing the sink's credentials, restarting, overloaded): only a row ClickHouse
refuses for its data is dead-lettered.
Schema registry unavailable (a record whose schema id is not cached yet): the record is not
dead-lettered; its partition is paused and sought back to it, and read again after a backoff.
Every outage sets ``stockflow_sink_paused{cause}`` and logs its cause once, then every tenth
retry, and once more when it ends. SIGTERM: stop consuming, flush and commit the buffer, exit 0.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from streams.kernel.kafka_config import admin_config, consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import SINK_TOPICS
from streams.sink.buffer import Batch, Buffer, Entry
from streams.sink.deadletters import Codec, DeadLetters
from streams.sink.metrics import SinkMetrics
from streams.sink.order_rows import order_key, table_rows
from streams.sink.rows import Row, RowError, Table, event_id_of
from streams.sink.writer import Insert, write_batch
from streams.warehouse.clickhouse import (
    connect,
    database_name,
    first_line,
    is_unavailable,
    outage_cause,
)
from streams.warehouse.migrations import migrate

log = logging.getLogger("stockflow.sink")

REGISTRY_UNAVAILABLE = "registry_unavailable"


class RegistryUnavailableError(Exception):
    """The codec could not reach the schema registry for this record: read it again later."""


SINK_GROUP = "stockflow-sink"


@dataclass(frozen=True)
class SinkConfig:
    batch_rows: int = 10_000
    max_age: float = 1.0  # seconds a record may wait for its batch
    capacity: int = 100_000  # rows buffered before the consumer pauses
    consume_max: int = 5_000  # records per consume() call
    poll_seconds: float = 0.2
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    shutdown_seconds: float = 30.0  # to flush on SIGTERM before giving up (records replay)
    lag_every: float = 10.0  # 0: no lag gauge (for tests without a broker)
    progress_every: float = 10.0


class ClickHouseInsert:
    """Inserts rows as native blocks (never inline VALUES: that hangs on 18.16)."""

    def __init__(self, settings: Settings) -> None:
        self.db = database_name(settings)
        self.client = connect(settings)

    def __call__(self, table: Table, rows: list[Row]) -> None:
        columns = ", ".join(table.columns)
        try:
            self.client.execute(
                f"INSERT INTO {self.db}.{table.name} ({columns}) VALUES", rows, types_check=True
            )
        except Exception:
            self.client.disconnect()  # a half-read reply must not confuse the next query
            raise


class Sink:
    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        *,
        group_id: str = SINK_GROUP,
        config: SinkConfig | None = None,
        metrics: SinkMetrics | None = None,
        insert: Insert | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.config = config or SinkConfig()
        self.metrics = metrics or SinkMetrics()
        self.clock = clock
        self.group_id = group_id
        self._insert = insert
        c = self.config
        self.buffer = Buffer(batch_rows=c.batch_rows, max_age=c.max_age, capacity=c.capacity)
        self.consumer: Consumer | None = None
        self.dead_letters: DeadLetters | None = None
        self.admin: AdminClient | None = None
        self._paused = False
        self._retry_at = 0.0
        self._failures = 0
        self._down_since: float | None = None
        self._inserted = Tally[str]()
        self._next_lag = 0.0
        self._next_progress = 0.0
        self._outage: str | None = None  # cause of the ClickHouse outage under way
        self._held: dict[tuple[str, int], int] = {}  # partition -> offset to read again
        self._held_until = 0.0
        self._registry_failures = 0
        self._registry_down_since: float | None = None
        self._causes: set[str] = set()  # outages under way

    # -- lifecycle ---------------------------------------------------------------------

    def run(self, stop: threading.Event) -> int:
        """Consume until ``stop`` is set, then flush and commit. 0 if everything got out."""
        if not self._migrate(stop) or not self._preload(stop):
            return 1
        insert = self._insert or ClickHouseInsert(self.settings)
        self._insert = insert
        self.dead_letters = DeadLetters(self.settings, self.codec, self.metrics)
        self.consumer = Consumer(consumer_config(self.settings, self.group_id))
        topics = [t.name for t in SINK_TOPICS]
        self.consumer.subscribe(
            topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info(
            "sink: consuming %s as group %s into ClickHouse %s",
            ", ".join(topics),
            self.group_id,
            database_name(self.settings),
        )
        try:
            while not stop.is_set():
                self.step()
            return self._shutdown()
        finally:
            self.consumer.close()
            if isinstance(insert, ClickHouseInsert):
                insert.client.disconnect()

    def _migrate(self, stop: threading.Event) -> bool:
        db = database_name(self.settings)
        delay = self.config.backoff_initial
        while not stop.is_set():
            client = connect(self.settings)
            try:
                applied = migrate(client, db)
                log.info(
                    "ClickHouse %s: schema up to date (applied now: %s)", db, applied or "none"
                )
                return True
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                log.warning(
                    "ClickHouse unavailable for migrations (%s); retry in %.1f s", exc, delay
                )
            finally:
                client.disconnect()
            stop.wait(delay)
            delay = min(delay * 2, self.config.backoff_max)
        return False

    def _preload(self, stop: threading.Event) -> bool:
        """Register the schemas now (registry mode), so a dead letter can always be encoded."""
        preload = getattr(self.codec, "preload", None)
        if preload is None:
            return True
        delay = self.config.backoff_initial
        while not stop.is_set():
            try:
                preload()
            except Exception as exc:
                if getattr(exc, "reason", None) != REGISTRY_UNAVAILABLE:
                    raise
                self._set_outage(REGISTRY_UNAVAILABLE, True)
                log.warning("sink: schema registry unavailable (%s); retry in %.1f s", exc, delay)
            else:
                if REGISTRY_UNAVAILABLE in self._causes:
                    log.info("sink: schema registry answers again; starting")
                self._set_outage(REGISTRY_UNAVAILABLE, False)
                return True
            stop.wait(delay)
            delay = min(delay * 2, self.config.backoff_max)
        return False

    def _shutdown(self) -> int:
        deadline = self.clock() + self.config.shutdown_seconds
        while len(self.buffer) and self.clock() < deadline:
            if not self.flush():
                time.sleep(min(0.5, max(0.0, deadline - self.clock())))
        if len(self.buffer):
            log.error(
                "sink: stopping with %d records (%d rows) not in ClickHouse; their offsets"
                " are not committed, so the next sink reads them again",
                len(self.buffer),
                self.buffer.rows,
            )
            return 1
        log.info("sink: flushed and committed; bye")
        return 0

    # -- the loop ----------------------------------------------------------------------

    def step(self) -> None:
        """One turn: apply backpressure, consume, flush what is due, update gauges."""
        consumer = self._consumer()
        self._backpressure(consumer)
        room = self.buffer.room
        if room > 0:
            messages = consumer.consume(
                num_messages=min(room, self.config.consume_max), timeout=self.config.poll_seconds
            )
        else:
            # Paused: poll anyway to stay in the group and serve rebalance callbacks.
            messages = consumer.consume(num_messages=1, timeout=self.config.poll_seconds)
        now = self.clock()
        blocked: dict[tuple[str, int], int] = {}
        for message in messages:
            where = (message.topic() or "", message.partition() or 0)
            if where in blocked:
                continue  # read again from the blocked record, in order
            try:
                self._take(message, now)
            except RegistryUnavailableError as exc:
                blocked[where] = message.offset() or 0
                self._registry_down(exc, blocked)
        self._registry_check()
        if self.buffer.due(self.clock()) and self.clock() >= self._retry_at:
            self.flush()
        self.metrics.buffered.set(self.buffer.rows)
        self._periodic()

    def _take(self, message: Message, now: float) -> None:
        err = message.error()
        if err is not None:
            if err.fatal():
                raise KafkaException(err)
            log.warning("sink: consumer error: %s", err)
            return
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None and partition is not None and offset is not None
        self.metrics.records.labels(topic=topic).inc()
        key, value = message.key(), message.value()
        if value is None:  # a tombstone of a compacted topic: nothing to store
            self.buffer.add(Entry(topic, partition, offset, key=key, added_at=now))
            return
        event_id: str | None = None
        try:
            try:
                schema, record = self.codec.decode(value)
            except Exception as exc:
                if getattr(exc, "reason", None) == REGISTRY_UNAVAILABLE:
                    raise RegistryUnavailableError(str(exc)) from None
                raise
            event_id = event_id_of(record) or order_key(record)
            (table, rows), *more = table_rows(schema, record, partition, offset)
        except RegistryUnavailableError:
            raise
        except RowError as exc:
            reason, error = exc.reason, str(exc)
        except Exception as exc:  # the codec's CodecError, or anything a bad payload raises
            reason = str(getattr(exc, "reason", None) or "undecodable")
            error = f"{type(exc).__name__}: {exc}"
        else:
            extra = tuple((t, tuple(r)) for t, r in more)
            self.buffer.add(
                Entry(
                    topic, partition, offset, table, tuple(rows), key, value, event_id, now, extra
                )
            )
            self._registry_ok()
            return
        self._dead_letter(reason, error, topic, partition, offset, key, value, event_id)
        # Kept as an empty entry: its offset is committed in order, after its dead letter.
        self.buffer.add(
            Entry(topic, partition, offset, key=key, value=value, event_id=event_id, added_at=now)
        )

    def _dead_letter(
        self,
        reason: str,
        error: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        event_id: str | None,
    ) -> None:
        assert self.dead_letters is not None
        self.dead_letters.send(
            reason=reason,
            error=error,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            event_id=event_id,
        )

    def flush(self) -> bool:
        """Insert, confirm and commit the oldest batch. False if it must be tried again."""
        if not len(self.buffer):
            return True
        batch = self.buffer.take()
        started = self.clock()
        assert self._insert is not None and self.dead_letters is not None
        try:
            result = write_batch(self._insert, batch)
        except Exception as exc:
            self._unavailable(exc, batch)
            return False
        for entry, error in result.refused.values():
            self.metrics.failures.labels(kind="refused").inc()
            self._dead_letter(
                "clickhouse_refused",
                error,
                entry.topic,
                entry.partition,
                entry.offset,
                entry.key,
                entry.value,
                entry.event_id,
            )
        if not self.dead_letters.confirm(timeout=10):
            log.warning("sink: dead letters not yet acknowledged by Kafka; batch retried")
            self._retry_at = self.clock() + self.config.backoff_initial
            return False
        self._commit(batch)
        self.buffer.done(batch)
        for table, n in result.inserted.items():
            self.metrics.rows.labels(table=table).inc(n)
            self._inserted[table] += n
        self.metrics.batch_seconds.observe(self.clock() - started)
        self.metrics.batch_rows.observe(batch.rows)
        self.metrics.buffered.set(self.buffer.rows)
        if self._down_since is not None:
            log.info(
                "sink: ClickHouse back after %.1f s and %d failed attempts (%s); catching up"
                " (%d rows buffered)",
                self.clock() - self._down_since,
                self._failures,
                self._outage,
                self.buffer.rows,
            )
        if self._outage is not None:
            self._set_outage(self._outage, False)
        self._failures, self._down_since, self._retry_at = 0, None, 0.0
        self._outage = None
        return True

    def _unavailable(self, exc: BaseException, batch: Batch) -> None:
        cause = outage_cause(exc)
        if cause is None:  # a programming error in the sink itself: do not loop
            raise exc
        cause = f"clickhouse_{cause}"
        changed = cause != self._outage
        if changed:
            if self._outage is not None:
                self._set_outage(self._outage, False)
            self._outage = cause
            self._set_outage(cause, True)
        self.metrics.failures.labels(kind="unavailable").inc()
        self.metrics.retries.inc()
        self._failures += 1
        now = self.clock()
        if self._down_since is None:
            self._down_since = now
        cap = min(self.config.backoff_max, self.config.backoff_initial * 2**self._failures)
        delay = random.uniform(self.config.backoff_initial, cap)  # full jitter, floored
        self._retry_at = now + delay
        if changed or self._failures % 10 == 0:
            log.warning(
                "sink: ClickHouse cannot take rows now (cause %s, %s: %s); batch of %d rows"
                " retried in %.1f s (attempt %d, %d rows buffered, nothing committed or"
                " dead-lettered)",
                cause,
                type(exc).__name__,
                first_line(exc),
                batch.rows,
                delay,
                self._failures,
                self.buffer.rows,
            )

    def _commit(self, batch: Batch) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in batch.commit_offsets().items()]
        try:
            self._consumer().commit(offsets=offsets, asynchronous=False)
            self.metrics.commits.labels(result="ok").inc()
        except KafkaException as exc:
            # The rows are in ClickHouse; an uncommitted offset only means a harmless replay.
            self.metrics.commits.labels(result="failed").inc()
            log.warning("sink: offset commit failed (%s); those records may be read again", exc)

    # -- backpressure and rebalances ---------------------------------------------------

    def _backpressure(self, consumer: Consumer) -> None:
        if self.buffer.full and not self._paused:
            consumer.pause(consumer.assignment())
            self._paused = True
            self.metrics.paused.set(1)
            log.warning(
                "sink: buffer full (%d rows); consumer paused until ClickHouse catches up",
                self.buffer.rows,
            )
        elif self._paused and self.buffer.rows <= self.buffer.capacity // 2:
            consumer.resume(
                [tp for tp in consumer.assignment() if (tp.topic, tp.partition) not in self._held]
            )
            self._paused = False
            self.metrics.paused.set(0)
            log.info("sink: consumer resumed (%d rows buffered)", self.buffer.rows)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("sink: assigned %d partitions", len(partitions))
        if self._paused:
            consumer.pause(partitions)
        for tp in partitions:
            self._held.pop((tp.topic, tp.partition), None)  # read from the committed offset

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Hand over cleanly: write and commit what we hold while the partitions are ours.
        while len(self.buffer) and self.flush():
            pass
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._held.pop((tp.topic, tp.partition), None)
        dropped = self.buffer.drop((tp.topic, tp.partition) for tp in partitions)
        if dropped:
            log.warning(
                "sink: %d uncommitted records of revoked partitions left for their next owner",
                dropped,
            )

    # -- outages of the schema registry -------------------------------------------------

    def _registry_down(
        self, exc: RegistryUnavailableError, blocked: dict[tuple[str, int], int]
    ) -> None:
        """Pause the blocked partitions at their undecoded record; try again after a backoff."""
        consumer = self._consumer()
        parts = [TopicPartition(t, p, o) for (t, p), o in blocked.items()]
        fresh = [tp for tp in parts if (tp.topic, tp.partition) not in self._held]
        if fresh:
            consumer.pause(fresh)
        for tp in parts:
            self._held[(tp.topic, tp.partition)] = tp.offset
            consumer.seek(tp)
        self._registry_failures += 1
        now = self.clock()
        if self._registry_down_since is None:
            self._registry_down_since = now
            self._set_outage(REGISTRY_UNAVAILABLE, True)
        self.metrics.retries.inc()
        cap = min(self.config.backoff_max, self.config.backoff_initial * 2**self._registry_failures)
        delay = random.uniform(self.config.backoff_initial, cap)
        self._held_until = now + delay
        if self._registry_failures == 1 or self._registry_failures % 10 == 0:
            log.warning(
                "sink: schema registry unavailable (%s); %s paused at the record, read again"
                " in %.1f s (attempt %d, nothing dead-lettered)",
                exc,
                " ".join(f"{t}[{p}] offset={o}" for (t, p), o in blocked.items()),
                delay,
                self._registry_failures,
            )

    def _registry_check(self) -> None:
        """Resume held partitions once their backoff is over."""
        if self._held and self.clock() >= self._held_until:
            consumer = self._consumer()
            held = [TopicPartition(t, p, o) for (t, p), o in self._held.items()]
            self._held.clear()
            if not self._paused:
                consumer.resume(held)

    def _registry_ok(self) -> None:
        """A record's schema was read: if the registry was down, the outage is over."""
        if self._registry_down_since is not None and not self._held:
            log.info(
                "sink: schema registry back after %.1f s and %d failed attempts",
                self.clock() - self._registry_down_since,
                self._registry_failures,
            )
            self._set_outage(REGISTRY_UNAVAILABLE, False)
            self._registry_down_since, self._registry_failures = None, 0

    def _set_outage(self, cause: str, on: bool) -> None:
        """Raise or clear the alert of one cause; each outage is counted once."""
        if on and cause not in self._causes:
            self.metrics.outages.labels(cause=cause).inc()
            self._causes.add(cause)
        elif not on:
            self._causes.discard(cause)
        self.metrics.outage.labels(cause=cause).set(1 if on else 0)

    def _consumer(self) -> Consumer:
        assert self.consumer is not None, "run() creates the consumer"
        return self.consumer

    # -- gauges and progress -----------------------------------------------------------

    def _periodic(self) -> None:
        now = self.clock()
        if self.config.lag_every > 0 and now >= self._next_lag:
            self._next_lag = now + self.config.lag_every
            self.update_lag()
        if now >= self._next_progress:
            self._next_progress = now + self.config.progress_every
            if self._inserted:
                done = ", ".join(f"{t} {n}" for t, n in sorted(self._inserted.items()))
                log.info("sink: inserted %s; %d rows buffered", done, self.buffer.rows)
                self._inserted.clear()

    def update_lag(self) -> dict[str, int]:
        """Per topic, high watermark minus committed offset over the assigned partitions.

        High watermarks come from an AdminClient in one request: asked through the busy
        consumer, each partition's watermark waits behind its fetches (~0.5 s apiece).
        """
        consumer = self._consumer()
        lag = dict.fromkeys((t.name for t in SINK_TOPICS), 0)
        try:
            assigned = consumer.assignment()
            if assigned:
                committed = consumer.committed(assigned, timeout=5)
                latest = self._admin().list_offsets(
                    {
                        TopicPartition(tp.topic, tp.partition): OffsetSpec.latest()
                        for tp in committed
                    },
                    request_timeout=5,
                )
                high = {(tp.topic, tp.partition): f.result().offset for tp, f in latest.items()}
                for tp in committed:
                    end = high[(tp.topic, tp.partition)]
                    done = tp.offset if tp.offset >= 0 else 0
                    lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - done)
        except KafkaException as exc:
            log.warning("sink: consumer lag not updated: %s", exc)
            return lag
        for topic, n in lag.items():
            self.metrics.lag.labels(topic=topic).set(n)
        return lag

    def _admin(self) -> AdminClient:
        if self.admin is None:
            self.admin = AdminClient(admin_config(self.settings))
        return self.admin
