"""Inserting a batch: refused rows isolated for the dead-letter topic, outages raised."""

from __future__ import annotations

import pytest
from clickhouse_driver.errors import NetworkError, ServerException

from streams.sink.buffer import Batch, Entry
from streams.sink.rows import ALERTS, MOVEMENTS, Row, Table
from streams.sink.writer import write_batch


class FakeClickHouse:
    """Stores rows per table; refuses any insert containing a poisoned row, like a server
    rejecting a value; ``down`` makes every insert fail with a network error."""

    def __init__(self, poison: frozenset[object] = frozenset(), down: bool = False) -> None:
        self.poison = poison
        self.down = down
        self.tables: dict[str, list[Row]] = {}
        self.calls = 0

    def __call__(self, table: Table, rows: list[Row]) -> None:
        self.calls += 1
        if self.down:
            raise NetworkError("Connection refused (127.0.0.1:9000)")
        if any(row[0] in self.poison for row in rows):
            raise ServerException("Cannot parse input", code=27)
        self.tables.setdefault(table.name, []).extend(rows)


def batch(ids: list[str], table: Table = MOVEMENTS) -> Batch:
    return Batch(tuple(Entry("m", 0, i, table, ((rid,),)) for i, rid in enumerate(ids)))


def test_every_row_lands_when_clickhouse_accepts_the_batch() -> None:
    """Given a healthy ClickHouse, when a batch of two tables is written, then every row is
    inserted with one insert per table and nothing is refused."""
    ch = FakeClickHouse()
    entries = batch(["a", "b"]).entries + batch(["x"], ALERTS).entries
    result = write_batch(ch, Batch(entries))
    assert result.inserted == {"stock_movements": 2, "alerts": 1}
    assert not result.refused and ch.calls == 2


def test_a_refused_row_is_isolated_and_the_rows_around_it_land() -> None:
    """Given a batch of 8 records where ClickHouse refuses the 6th, when it is written, then
    the 7 others are inserted and only the 6th is handed back with the server's error."""
    ch = FakeClickHouse(poison=frozenset({"r5"}))
    result = write_batch(ch, batch([f"r{i}" for i in range(8)]))
    assert sorted(r[0] for r in ch.tables["stock_movements"]) == [
        f"r{i}" for i in range(8) if i != 5
    ]
    [(entry, error)] = result.refused.values()
    assert entry.offset == 5 and "Cannot parse input" in error


def test_clickhouse_down_raises_so_the_batch_is_retried_and_nothing_is_refused() -> None:
    """Given ClickHouse unreachable, when a batch is written, then the network error is
    raised (the caller retries) instead of rows being dead-lettered."""
    with pytest.raises(NetworkError):
        write_batch(FakeClickHouse(down=True), batch(["a", "b", "c"]))
