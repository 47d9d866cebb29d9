"""State records reach the changelog, acknowledged, before the store and the events move on."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import faust
import pytest
from faust.stores.rocksdb import Store as RocksStore
from faust.tables.base import Collection
from faust.tables.table import Table
from mode.utils.collections import ManagedUserDict
from rocksdict import Options, Rdict

from streams.worker import changelog
from streams.worker.changelog import FAUST_VERSION, AckedTableWriter, ChangelogWriteError

# The Faust code AckedTableWriter replaces, as read for faust-streaming 0.15.3.
REPLACED = {
    Table.on_key_set: "a370e35ca55c2c7e",
    Collection.send_changelog: "3dd3884e1b5fc0e1",
    Collection._on_changelog_sent: "60122c86a120d82c",
    ManagedUserDict.__setitem__: "f3bdf602abc08dd1",
    # what the RocksDB write batches do instead of a put per record, as recovery does
    RocksStore._set: "4227e561e288d941",
    RocksStore.apply_changelog_batch: "ea3344d369fc4ab5",
    # what the ledger's direct state reads do instead of table.get under the event
    RocksStore._get: "7ae8dfd6d7754a59",
    ManagedUserDict.__getitem__: "9fb8a44e8d5e9994",
}


def test_the_faust_code_replaced_is_the_code_that_was_read() -> None:
    """Given the installed Faust, when the version and the source of the methods the acked
    writer replaces are compared with those it was written against, then they are the same;
    an upgrade fails here until streams/worker/changelog.py is checked against it."""
    assert faust.__version__ == FAUST_VERSION
    for method, digest in REPLACED.items():
        source = inspect.getsource(method).encode()
        assert hashlib.sha256(source).hexdigest()[:16] == digest, method.__qualname__


@dataclass
class Msg:
    partition: int


@dataclass
class Event:
    message: Msg


@dataclass
class Meta:
    topic_partition: tuple[str, int]
    offset: int


class Store(dict[bytes, bytes]):
    def __init__(self, current: list[Any]) -> None:
        super().__init__()
        self.current = current
        self.partition_of: dict[bytes, int] = {}
        self.persisted: dict[tuple[str, int], int] = {}

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.partition_of[key] = self.current[0].message.partition
        super().__setitem__(key, value)

    def set_persisted_offset(self, tp: tuple[str, int], offset: int) -> None:
        self.persisted[tp] = offset


class Topic:
    def get_topic_name(self) -> str:
        return "app-sku-state-changelog"


class FakeTable:
    def __init__(self, current: list[Any]) -> None:
        self.changelog_topic = Topic()
        self.data = Store(current)


class Producer:
    """Acknowledges sends, or fails the first ``fail`` attempts' acknowledgements."""

    def __init__(self, store: Store, fail: int = 0) -> None:
        self.store = store
        self.fail = fail
        self.sent: list[tuple[str, bytes, bytes, int]] = []
        self.store_at_ack: list[int] = []

    async def send_all(self, records: Any) -> Any:
        acked = []
        failed = False
        for topic, partition, key, value in records:
            self.sent.append((topic, key, value, partition))
            self.store_at_ack.append(len(self.store))
            acked.append(((topic, partition), len(self.sent)))
        await asyncio.sleep(0)
        if self.fail:
            self.fail -= 1
            failed = True
        if failed:
            raise OSError("broker unreachable")
        return acked


def _writer(fail: int) -> tuple[AckedTableWriter, FakeTable, Producer]:
    current: list[Any] = [None]

    @contextmanager
    def as_current(event: Any) -> Iterator[None]:
        before, current[0] = current[0], event
        try:
            yield
        finally:
            current[0] = before

    table = FakeTable(current)
    producer = Producer(table.data, fail)
    return AckedTableWriter(table, producer.send_all, as_current), table, producer


ITEMS = [(b"a", b"state-a", Event(Msg(0))), (b"b", b"state-b", Event(Msg(3)))]


def test_states_are_stored_only_after_kafka_acknowledged_their_changelog_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given two states of events of partitions 0 and 3, when the writer stores them after
    one failed attempt, then each changelog record went to its event's partition with the
    raw key and value, the store was empty while the records were sent, each key is stored
    under its own event's partition, and the acknowledged offsets are recorded."""
    monkeypatch.setattr(changelog, "FIRST_BACKOFF_S", 0.0)
    writer, table, producer = _writer(fail=1)
    asyncio.run(writer.write(ITEMS))
    topic = "app-sku-state-changelog"
    assert producer.sent[-2:] == [(topic, b"a", b"state-a", 0), (topic, b"b", b"state-b", 3)]
    assert producer.store_at_ack == [0, 0, 0, 0]
    assert dict(table.data) == {b"a": b"state-a", b"b": b"state-b"}
    assert table.data.partition_of == {b"a": 0, b"b": 3}
    assert table.data.persisted == {(topic, 0): 3, (topic, 3): 4}


def test_a_changelog_that_never_acknowledges_stops_the_batch_before_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a producer whose sends are never acknowledged, when the writer stores a batch,
    then it raises ChangelogWriteError after its retries and the store holds nothing, so the
    events of the batch are not acknowledged either."""
    monkeypatch.setattr(changelog, "FIRST_BACKOFF_S", 0.0)
    writer, table, _ = _writer(fail=10_000)
    with pytest.raises(ChangelogWriteError, match="not acknowledged after 5 attempts"):
        asyncio.run(writer.write(ITEMS))
    assert dict(table.data) == {}


class Partitions:
    """What ``_write_batches`` uses of Faust's RocksDB store: one real database per
    partition, raw mode, as Faust opens them; raw keys and values."""

    def __init__(self, folder: Any) -> None:
        self.folder = folder
        self.dbs: dict[int, Rdict] = {}
        self._key_index: dict[bytes, int] = {}

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = Rdict(str(self.folder / str(partition)), Options(raw_mode=True))
        return self.dbs[partition]

    def _encode_key(self, key: bytes) -> bytes:
        return key

    def _encode_value(self, value: bytes) -> bytes:
        return value

    def _decode_value(self, value: bytes) -> bytes:
        return value

    def contents(self) -> dict[int, dict[bytes, bytes]]:
        return {n: dict(db.items()) for n, db in sorted(self.dbs.items())}


def test_write_batches_leave_each_partition_as_one_put_or_delete_per_record_does(
    tmp_path: Any,
) -> None:
    """Given records over two partitions: pages, main records, a record written twice in
    one batch and the tombstone of a stored page,
    When they are written as one RocksDB write batch per partition, and the same records
    as one put or delete per record (what ``store[key] = value`` under each event does),
    Then both leave every partition's database with the same keys and values, each key in
    the partition of the event that wrote it, and the key index names that partition."""
    first = [(b"a\xffi0", b"page", Event(Msg(0))), (b"b\xffi0", b"old", Event(Msg(1)))]
    items = [
        (b"a\xffi1", b"page-1", Event(Msg(0))),
        (b"a", b"main-a", Event(Msg(0))),
        (b"b", b"main-b", Event(Msg(1))),
        (b"b", b"main-b2", Event(Msg(1))),
        (b"b\xffi0", None, Event(Msg(1))),
    ]
    batched, each = Partitions(tmp_path / "batched"), Partitions(tmp_path / "each")
    for round_ in (first, items):
        changelog._write_batches(batched, round_)  # type: ignore[arg-type]
        for key, value, event in round_:
            db = each._db_for_partition(event.message.partition)
            if value is None:
                db.delete(key)
            else:
                db.put(key, value)
    assert (
        batched.contents()
        == each.contents()
        == {
            0: {b"a": b"main-a", b"a\xffi0": b"page", b"a\xffi1": b"page-1"},
            1: {b"b": b"main-b2"},
        }
    )
    assert batched._key_index == {b"a\xffi0": 0, b"b\xffi0": 1, b"a\xffi1": 0, b"a": 0, b"b": 1}
    for db in (*batched.dbs.values(), *each.dbs.values()):
        db.close()


def test_a_state_is_read_back_from_the_partition_of_its_event(tmp_path: Any) -> None:
    """Given states written as write batches over two partitions, when the ledger's reader
    reads each key under an event of its partition, then it gets the stored bytes and the
    key index names that partition; under an event of the other partition, or for a key
    never written or deleted, it gets None, as Faust's Store._get does."""
    store = Partitions(tmp_path / "store")
    changelog._write_batches(  # type: ignore[arg-type]
        store,
        [
            (b"a", b"main-a", Event(Msg(0))),
            (b"b", b"main-b", Event(Msg(1))),
            (b"b\xffi0", b"page", Event(Msg(1))),
            (b"b\xffi0", None, Event(Msg(1))),
        ],
    )
    store._key_index.clear()
    read = changelog._reader(store)  # type: ignore[arg-type]
    assert read(b"a", Event(Msg(0))) == b"main-a" and read(b"b", Event(Msg(1))) == b"main-b"
    assert store._key_index == {b"a": 0, b"b": 1}
    assert read(b"a", Event(Msg(1))) is None and read(b"c", Event(Msg(0))) is None
    assert read(b"b\xffi0", Event(Msg(1))) is None
    for db in store.dbs.values():
        db.close()
