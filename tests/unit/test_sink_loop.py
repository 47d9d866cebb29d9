"""The sink loop with fakes for Kafka and ClickHouse: commit order, backpressure, outage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import TopicPartition

from schemas.codec import CodecError
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_MOVEMENTS
from streams.sink.buffer import Entry
from streams.sink.rows import MOVEMENT, MOVEMENTS, Row, Table
from streams.sink.sink import Sink, SinkConfig

TOPIC = STOCK_MOVEMENTS.name


class JsonCodec:
    """Stands in for the Avro codec: JSON ``{"schema": ..., "record": ...}``."""

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        doc = json.loads(data)  # raises ValueError on garbage, like CodecError
        return doc["schema"], doc["record"]

    def encode(self, schema: str, record: dict[str, Any]) -> bytes:
        return json.dumps({"schema": schema, "record": record}, default=str).encode()


class RegistryDownCodec(JsonCodec):
    """The JSON codec behind a schema registry that may not answer: while ``down``, every
    decode fails as the registry codec does for a schema id it has not cached."""

    def __init__(self) -> None:
        self.down = False
        self.refusals = 0

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        if self.down:
            self.refusals += 1
            raise CodecError("registry_unavailable", "schema registry at http://r unreachable")
        return super().decode(data)


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"sku"

    def value(self) -> bytes | None:
        return self._value


@dataclass
class FakeConsumer:
    """A log per partition; honours pause/resume and records every commit."""

    log: dict[int, list[bytes]]
    position: dict[int, int] = field(default_factory=dict)
    paused_parts: set[int] = field(default_factory=set)
    pauses: int = 0
    commits: list[dict[int, int]] = field(default_factory=list)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.log]

    @property
    def paused(self) -> bool:
        return bool(self.paused_parts)

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        out: list[FakeMessage] = []
        for p, values in self.log.items():
            if p in self.paused_parts:
                continue
            while len(out) < num_messages and self.position.get(p, 0) < len(values):
                o = self.position.get(p, 0)
                out.append(FakeMessage(TOPIC, p, o, values[o]))
                self.position[p] = o + 1
        return out

    def pause(self, parts: list[TopicPartition]) -> None:
        self.paused_parts |= {tp.partition for tp in parts}
        self.pauses += 1

    def resume(self, parts: list[TopicPartition]) -> None:
        self.paused_parts -= {tp.partition for tp in parts}

    def seek(self, tp: TopicPartition) -> None:
        self.position[tp.partition] = tp.offset

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        self.commits.append({tp.partition: tp.offset for tp in offsets})

    def committed(self, parts: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        done: dict[int, int] = {}
        for c in self.commits:
            done.update(c)
        return [TopicPartition(TOPIC, tp.partition, done.get(tp.partition, -1001)) for tp in parts]

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float, cached: bool
    ) -> tuple[int, int]:
        return 0, len(self.log[tp.partition])


class FakeClickHouse:
    """Keeps (partition, offset) of inserted rows; ``down`` fails inserts like a dead server."""

    def __init__(self) -> None:
        self.down = False
        self.rows: list[Row] = []

    def __call__(self, table: Table, rows: list[Row]) -> None:
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        self.rows.extend(rows)

    def coordinates(self) -> set[tuple[int, int]]:
        p, o = MOVEMENTS.columns.index("kafka_partition"), MOVEMENTS.columns.index("kafka_offset")
        return {(r[p], r[o]) for r in self.rows}


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.unconfirmed = 0

    def send(self, **fields: Any) -> None:
        self.sent.append(fields)
        self.unconfirmed += 1

    def confirm(self, timeout: float) -> bool:
        self.unconfirmed = 0
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def movement(i: int) -> bytes:
    record = {
        "movement_id": f"e{i}:0",
        "event_id": f"e{i}",
        "sku": "chair",
        "location": "wh1",
        "channel": "web",
        "type": "sale",
        "reason": None,
        "delta_on_hand": -1,
        "delta_reserved": 0,
        "delta_unsellable": 0,
        "delta_incoming": 0,
        "on_hand_after": 0,
        "reserved_after": 0,
        "unsellable_after": 0,
        "occurred_at": 1_795_000_000_000 + i,
        "applied_at": 1_795_000_000_000 + i,
        "source_ref": None,
    }
    return JsonCodec().encode(MOVEMENT, record)


def make_sink(
    log: dict[int, list[bytes]],
    capacity: int = 10,
    batch_rows: int = 5,
) -> tuple[Sink, FakeConsumer, FakeClickHouse, FakeDeadLetters, Clock]:
    consumer, ch, dl, clock = FakeConsumer(log), FakeClickHouse(), FakeDeadLetters(), Clock()
    config = SinkConfig(
        batch_rows=batch_rows,
        max_age=1.0,
        capacity=capacity,
        consume_max=3,
        backoff_initial=0.5,
        backoff_max=2.0,
        lag_every=0,
    )
    sink = Sink(Settings(), JsonCodec(), config=config, insert=ch, clock=clock)
    sink.consumer = consumer  # type: ignore[assignment]
    sink.dead_letters = dl  # type: ignore[assignment]
    return sink, consumer, ch, dl, clock


def committed_within_inserted(
    consumer: FakeConsumer, ch: FakeClickHouse, dl: FakeDeadLetters
) -> None:
    dead = {(d["partition"], d["offset"]) for d in dl.sent}
    for commit in consumer.commits:
        for p, next_offset in commit.items():
            for o in range(next_offset):
                assert (p, o) in ch.coordinates() or (p, o) in dead, (p, o)


def test_an_outage_pauses_the_consumer_commits_nothing_and_catches_up_after() -> None:
    """Given 40 records on 2 partitions and ClickHouse down, when the sink runs, then it
    buffers up to capacity, pauses the consumer and commits nothing; when ClickHouse comes
    back, then every record lands once per insert, commits reach the end of both
    partitions, and no commit ever passed a record not in ClickHouse."""
    log = {0: [movement(i) for i in range(20)], 1: [movement(100 + i) for i in range(20)]}
    sink, consumer, ch, dl, clock = make_sink(log)
    ch.down = True
    for _ in range(30):
        sink.step()
        clock.now += 0.5
    assert consumer.paused and consumer.pauses == 1
    assert consumer.commits == [] and ch.rows == []
    assert 10 <= sink.buffer.rows <= 10 + 3  # capacity plus at most one consume call
    assert (sink.metrics.registry.get_sample_value("stockflow_sink_insert_retries_total") or 0) > 0

    ch.down = False
    for _ in range(60):
        sink.step()
        clock.now += 0.5
    assert not consumer.paused
    assert ch.coordinates() == {(p, o) for p in (0, 1) for o in range(20)}
    assert sink.buffer.rows == 0
    final: dict[int, int] = {}
    for c in consumer.commits:
        final.update(c)
    assert final == {0: 20, 1: 20}
    committed_within_inserted(consumer, ch, dl)


def test_a_poison_record_is_dead_lettered_and_the_records_around_it_land() -> None:
    """Given a record that is not decodable between good ones, when the sink runs, then it
    goes to the dead-letter topic with its coordinates and reason, the good ones are
    inserted, and the commit covers all of them."""
    log = {0: [movement(0), b"\x00garbage", movement(2)]}
    sink, consumer, ch, dl, clock = make_sink(log)
    for _ in range(5):
        sink.step()
        clock.now += 1.0
    assert ch.coordinates() == {(0, 0), (0, 2)}
    [dead] = dl.sent
    assert (dead["partition"], dead["offset"], dead["reason"]) == (0, 1, "undecodable")
    assert dead["value"] == b"\x00garbage"
    assert consumer.commits[-1] == {0: 3}


def test_shutdown_flushes_and_commits_what_is_buffered() -> None:
    """Given records consumed but not yet due, when the sink shuts down (SIGTERM), then it
    inserts and commits them and returns 0."""
    sink, consumer, ch, _dl, _clock = make_sink(
        {0: [movement(i) for i in range(3)]}, batch_rows=100, capacity=1000
    )
    sink.step()
    assert ch.rows == [] and sink.buffer.rows == 3
    assert sink._shutdown() == 0
    assert consumer.commits == [{0: 3}] and len(ch.rows) == 3


def test_shutdown_with_clickhouse_down_commits_nothing_and_fails() -> None:
    """Given records buffered and ClickHouse down, when the sink shuts down, then it gives up
    after its shutdown time, commits nothing (the records will be read again) and returns 1."""
    sink, consumer, ch, _dl, _clock = make_sink({0: [movement(0)]})
    sink.config = SinkConfig(shutdown_seconds=0.0)
    sink.step()
    ch.down = True
    assert sink._shutdown() == 1
    assert consumer.commits == []


def test_an_empty_entry_still_commits_in_order() -> None:
    """Given only an empty entry buffered (a tombstone of the compacted levels topic), when
    flushed, then nothing is inserted and its offset is committed."""
    sink, consumer, ch, _dl, _clock = make_sink({0: []})
    sink.buffer.add(Entry(TOPIC, 0, 0, None, (), added_at=0.0))
    assert sink.flush()
    assert consumer.commits == [{0: 1}] and ch.rows == []


def test_a_registry_outage_pauses_the_partitions_and_dead_letters_nothing() -> None:
    """Given 20 records on 2 partitions and a schema registry that does not answer, when the
    sink runs, then it dead-letters nothing, inserts and commits nothing, raises the
    registry_unavailable alert and retries; when the registry answers again, then every
    record lands exactly once, commits reach the end and the alert is cleared."""
    log = {0: [movement(i) for i in range(10)], 1: [movement(100 + i) for i in range(10)]}
    sink, consumer, ch, dl, clock = make_sink(log, capacity=100)
    codec = RegistryDownCodec()
    sink.codec = codec
    codec.down = True
    sample = sink.metrics.registry.get_sample_value
    for _ in range(40):
        sink.step()
        clock.now += 0.5
    assert dl.sent == [] and ch.rows == [] and consumer.commits == []
    assert codec.refusals > 2  # retried, with backoff (not once per step)
    assert codec.refusals < 40
    assert sample("stockflow_sink_paused", {"cause": "registry_unavailable"}) == 1
    assert sample("stockflow_sink_outages_total", {"cause": "registry_unavailable"}) == 1

    codec.down = False
    for _ in range(40):
        sink.step()
        clock.now += 0.5
    assert dl.sent == []
    assert sorted(ch.coordinates()) == sorted((p, o) for p in (0, 1) for o in range(10))
    assert len(ch.rows) == 20
    final: dict[int, int] = {}
    for c in consumer.commits:
        final.update(c)
    assert final == {0: 10, 1: 10}
    assert sample("stockflow_sink_paused", {"cause": "registry_unavailable"}) == 0


def test_clickhouse_read_only_raises_its_alert_and_clears_it_when_writable_again() -> None:
    """Given ClickHouse answering READONLY (code 164) to inserts, when the sink runs, then
    nothing is dead-lettered or committed and stockflow_sink_paused{cause=clickhouse_read_only}
    is 1; when inserts are accepted again, every record lands and the alert is 0."""
    from clickhouse_driver.errors import ServerException

    log = {0: [movement(i) for i in range(6)]}
    sink, consumer, ch, dl, clock = make_sink(log, capacity=100)
    read_only = True
    write = ch.__call__

    def insert(table: Table, rows: list[Row]) -> None:
        if read_only:
            raise ServerException("Cannot insert into table in readonly mode.", code=164)
        write(table, rows)

    sink._insert = insert
    sample = sink.metrics.registry.get_sample_value
    for _ in range(10):
        sink.step()
        clock.now += 0.5
    assert dl.sent == [] and consumer.commits == []
    assert sample("stockflow_sink_paused", {"cause": "clickhouse_read_only"}) == 1
    read_only = False
    for _ in range(20):
        sink.step()
        clock.now += 0.5
    assert dl.sent == [] and len(ch.rows) == 6 and consumer.commits[-1] == {0: 6}
    assert sample("stockflow_sink_paused", {"cause": "clickhouse_read_only"}) == 0
    assert sample("stockflow_sink_outages_total", {"cause": "clickhouse_read_only"}) == 1
