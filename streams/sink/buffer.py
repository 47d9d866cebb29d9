"""The sink's buffer: consumed records in arrival order, drained as size- and time-bound batches.

A batch is always a *prefix* of the buffer. Kafka hands each partition's records over in
offset order, so committing "last offset of the batch + 1" per partition never commits a
record that is not in ClickHouse yet (or dead-lettered), which is the whole promise.
Pure: no Kafka, no ClickHouse, no clock of its own (the caller passes ``now``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.sink.rows import Row, Table


@dataclass(frozen=True, slots=True)
class Entry:
    """One consumed record: its coordinates, and its rows (none if dead-lettered or empty)."""

    topic: str
    partition: int
    offset: int
    table: Table | None = None
    rows: tuple[Row, ...] = ()
    key: bytes | None = None
    value: bytes = b""
    event_id: str | None = None
    added_at: float = 0.0
    # Rows of further tables, for a record stored in several (an order state).
    more: tuple[tuple[Table, tuple[Row, ...]], ...] = ()

    @property
    def size(self) -> int:
        """Rows of every table."""
        return len(self.rows) + sum(len(rows) for _, rows in self.more)

    def parts(self) -> list[tuple[Table, tuple[Row, ...]]]:
        first = [(self.table, self.rows)] if self.table is not None else []
        return first + list(self.more)


@dataclass(frozen=True, slots=True)
class Batch:
    entries: tuple[Entry, ...]

    @property
    def rows(self) -> int:
        return sum(e.size for e in self.entries)

    def by_table(self) -> dict[Table, list[tuple[Row, Entry]]]:
        tables: dict[Table, list[tuple[Row, Entry]]] = {}
        for entry in self.entries:
            for table, rows in entry.parts():
                tables.setdefault(table, []).extend((row, entry) for row in rows)
        return tables

    def commit_offsets(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition), the offset to commit: the next one to read."""
        offsets: dict[tuple[str, int], int] = {}
        for e in self.entries:
            tp = (e.topic, e.partition)
            offsets[tp] = max(offsets.get(tp, 0), e.offset + 1)
        return offsets


@dataclass
class Buffer:
    """Bounded by ``capacity`` rows (the consumer pauses at it), drained ``batch_rows`` at a
    time, and due when it holds ``batch_rows`` rows or its oldest record is ``max_age`` old."""

    batch_rows: int = 10_000
    max_age: float = 1.0
    capacity: int = 100_000
    _entries: deque[Entry] = field(default_factory=deque)
    _rows: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.batch_rows <= self.capacity:
            raise ValueError("need 0 < batch_rows <= capacity")

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def full(self) -> bool:
        return self._rows >= self.capacity

    @property
    def room(self) -> int:
        return max(0, self.capacity - self._rows)

    def add(self, entry: Entry) -> None:
        self._entries.append(entry)
        self._rows += entry.size

    def due(self, now: float) -> bool:
        if not self._entries:
            return False
        return self._rows >= self.batch_rows or now - self._entries[0].added_at >= self.max_age

    def take(self) -> Batch:
        """The oldest records, up to ``batch_rows`` rows (at least one record); not removed
        until :meth:`done`, so a failed insert is simply taken again."""
        taken: list[Entry] = []
        rows = 0
        for entry in self._entries:
            if taken and rows + entry.size > self.batch_rows:
                break
            taken.append(entry)
            rows += entry.size
        return Batch(tuple(taken))

    def done(self, batch: Batch) -> None:
        """Forget a batch that is in ClickHouse and committed (it is the buffer's prefix)."""
        for expected in batch.entries:
            entry = self._entries.popleft()
            assert entry is expected, "batches must be done in the order they were taken"
            self._rows -= entry.size

    def drop(self, partitions: Iterable[tuple[str, int]]) -> int:
        """Forget uncommitted records of partitions this consumer lost; their new owner reads
        them again from the committed offset. Returns the number of records dropped."""
        lost = set(partitions)
        kept = deque(e for e in self._entries if (e.topic, e.partition) not in lost)
        dropped = len(self._entries) - len(kept)
        self._entries = kept
        self._rows = sum(e.size for e in kept)
        return dropped
