"""SKU states written to the table's changelog, acknowledged by Kafka, then to the store.

The one place that touches Faust's table internals. It replaces what ``table[key] = value``
does in faust-streaming 0.15.3: ``ManagedUserDict.__setitem__`` calls
``Table.on_key_set``, which hands the changelog record to ``Topic.send_soon`` (a buffer the
producer flushes later; a failed send is only logged by ``Collection._on_changelog_sent``'s
future) and then puts the value in the store. A worker could so acknowledge events whose
state never reached the changelog, and a restart would lose them.

Here, for one batch: every changelog record is produced with the key and value Faust would
send (raw bytes, to the partition of the event that changed the key), in one record batch
per partition (:mod:`streams.worker.fastpath`); all acknowledgements are awaited, and only
then are the values put in the store (without Faust sending them again; with the RocksDB
store as one write batch per partition, as Faust's recovery writes them) and the persisted
changelog offsets recorded, as ``_on_changelog_sent`` does. Recovery reads these records
like Faust's own: same topic, key, value and partition. A value of None is a tombstone (a
state page that left its SKU's window, :mod:`streams.ledger.stored`): it is produced as a
record without a value, as ``del table[key]`` would, and the key is then deleted from the
store; Faust's recovery deletes the key on reading it, both stores alike. A partition's
records keep their order (pages, then the main record, then tombstones).

The ledger also reads its states back through here (:func:`stored_reader`): straight from
the RocksDB database of the event's partition, as Faust's ``Store._get`` does under the
current event, instead of through ``table.get``, whose layers (``Mapping.get``,
``ManagedUserDict.__getitem__`` and its sensor call, ``SerializedStore.__contains__`` then
``__getitem__``: two reads of the database) cost more than the read itself.

``tests/unit/test_changelog_writes.py`` pins the Faust version and the source of the methods
replaced: a Faust upgrade must re-read them before it passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

from faust.stores.rocksdb import Store as RocksStore
from rocksdict import WriteBatch

from streams.worker.fastpath import Acked, Record

log = logging.getLogger("stockflow.ledger")

FAUST_VERSION = "0.15.3"
ATTEMPTS = 5
FIRST_BACKOFF_S = 0.5


class ChangelogWriteError(RuntimeError):
    """Kafka did not acknowledge a state's changelog record after every retry: the events
    it covers are not acknowledged, and the worker stops so that a restart replays them."""


class AckedTableWriter:
    """``await writer.write([(key, value or None, event), ...])``: changelog first,
    acknowledged; in the order given within each partition."""

    def __init__(
        self,
        table: Any,
        send_all: Callable[[Sequence[Record]], Awaitable[Acked]],
        as_current: Callable[[Any], AbstractContextManager[Any]],
    ) -> None:
        self.table = table  # a faust Table of raw bytes keys and values
        self.send_all = send_all  # sends records, returns once Kafka acknowledged them all
        self.as_current = as_current  # makes an event Faust's current event

    async def write(self, items: Sequence[tuple[bytes, bytes | None, Any]]) -> None:
        if not items:
            return
        topic = self.table.changelog_topic.get_topic_name()
        acks = await self._send_all(topic, items)
        store = self.table.data
        if isinstance(store, RocksStore) and store.use_rocksdict:
            _write_batches(store, items)
        else:
            self._put_each(store, items)
        for tp, offset in acks:
            store.set_persisted_offset(tp, offset)

    def _put_each(self, store: Any, items: Sequence[tuple[bytes, bytes | None, Any]]) -> None:
        for key, value, event in items:
            with self.as_current(event):  # a partitioned store writes to the event's partition
                if value is not None:
                    store[key] = value  # the store itself: Table.on_key_set is not called
                elif key in store:
                    del store[key]

    async def _send_all(
        self, topic: str, items: Sequence[tuple[bytes, bytes | None, Any]]
    ) -> Acked:
        delay = FIRST_BACKOFF_S
        records: list[Record] = [
            (topic, event.message.partition, key, value) for key, value, event in items
        ]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self.send_all(records)
            except Exception as exc:
                if attempt == ATTEMPTS:
                    raise ChangelogWriteError(
                        f"{topic}: {len(items)} state records not acknowledged after "
                        f"{ATTEMPTS} attempts ({type(exc).__name__}: {exc}); the events stay "
                        "unacknowledged and are replayed after a restart"
                    ) from exc
                log.warning(
                    "%s: state records not acknowledged (%s: %s); retry %d of %d in %.1f s",
                    topic,
                    type(exc).__name__,
                    exc,
                    attempt,
                    ATTEMPTS - 1,
                    delay,
                )
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover


def _write_batches(store: RocksStore, items: Sequence[tuple[bytes, bytes | None, Any]]) -> None:
    """The values in ``store`` as one RocksDB write batch per partition, as Faust's recovery
    writes changelog records (``Store.apply_changelog_batch``), instead of one put per
    record under its event: the same keys and values in the same partition's database as
    ``store[key] = value`` (``Store._set``, key index included) and a tombstone's delete;
    within a partition in the order given."""
    batches: dict[int, WriteBatch] = {}
    index = store._key_index
    for key, value, event in items:
        partition = event.message.partition
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = WriteBatch(raw_mode=True)
        name = store._encode_key(key)
        if value is not None:
            batch.put(name, store._encode_value(value))
            index[name] = partition
        else:
            batch.delete(name)
    for partition, batch in batches.items():
        store._db_for_partition(partition).write(batch)


def stored_reader(table: Any) -> Callable[[bytes, Any], bytes | None] | None:
    """``read(key, event)``: the value of ``key`` stored in the partition of ``event``, as
    ``table.get(key)`` under that event returns it (key index included); None when the
    table's store is not Faust's RocksDB store on rocksdict (then read through the table)."""
    store = table.data
    if not (isinstance(store, RocksStore) and store.use_rocksdict):
        return None
    return _reader(store)


def _reader(store: RocksStore) -> Callable[[bytes, Any], bytes | None]:
    index = store._key_index
    encode_key, decode_value = store._encode_key, store._decode_value
    db_for = store._db_for_partition

    def read(key: bytes, event: Any) -> bytes | None:
        name = encode_key(key)
        partition = event.message.partition
        value = db_for(partition).get(name)
        if value is None:
            return None
        index[name] = partition
        return cast(bytes, decode_value(value))

    return read
