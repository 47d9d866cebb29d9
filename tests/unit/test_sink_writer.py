"""Inserting a batch: refused rows isolated for the dead-letter topic, outages raised."""

from __future__ import annotations

import pytest
from clickhouse_driver.errors import NetworkError, ServerException

from streams.sink.buffer import Batch, Entry
from streams.sink.rows import ALERTS, MOVEMENTS, Row, Table
from streams.sink.writer import write_batch
from streams.warehouse.clickhouse import ServerConditionError, outage_cause


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


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (164, "read_only"),  # readonly=1, as 18.16 answers it
        (242, "read_only"),
        (243, "disk_full"),
        (192, "auth"),  # unknown user, as 18.16 answers it
        (193, "auth"),  # wrong password, as 18.16 answers it
        (516, "auth"),  # AUTHENTICATION_FAILED of current releases
        (60, "restarting"),
        (252, "overloaded"),
        (202, "overloaded"),
    ],
)
def test_a_server_condition_is_raised_for_a_retry_and_no_row_is_refused(
    code: int, cause: str
) -> None:
    """Given ClickHouse answering every insert with a server condition (read-only, full,
    refusing credentials, restarting, overloaded), when a batch is written, then the error
    is raised for a retry with its cause, after a single insert: no row is refused."""
    calls = 0

    def insert(table: Table, rows: list[Row]) -> None:
        nonlocal calls
        calls += 1
        raise ServerException("not now", code=code)

    with pytest.raises(ServerException) as raised:
        write_batch(insert, batch(["a", "b", "c", "d"]))
    assert outage_cause(raised.value) == cause
    assert calls == 1


def test_an_unknown_server_error_that_refuses_even_an_empty_insert_refuses_no_row() -> None:
    """Given ClickHouse failing every insert with an error code the sink does not know, when
    a batch is written, then bisection finds the server refuses an empty insert too, and
    raises a server condition (retried) instead of handing back any row to dead-letter."""

    def insert(table: Table, rows: list[Row]) -> None:
        raise ServerException("Cannot write to file", code=9999)

    with pytest.raises(ServerConditionError) as raised:
        write_batch(insert, batch(["a", "b", "c"]))
    assert outage_cause(raised.value) == "server_error"


def test_a_data_error_is_not_an_outage() -> None:
    """Given a refusal for the data (CANNOT_PARSE_INPUT, 27) or a value the driver cannot
    encode, then it is not an outage: those rows are dead-lettered."""
    assert outage_cause(ServerException("Cannot parse input", code=27)) is None
    assert outage_cause(TypeError("bad value")) is None
    assert outage_cause(NetworkError("refused")) == "unreachable"
