"""Insert a batch, table by table; find and hand back the rows ClickHouse refuses.

An insert that fails because ClickHouse is unavailable raises: the caller retries the whole
batch later (rows already written are duplicates the tables absorb). An insert ClickHouse
refuses for its *data* is split in halves until the refused rows are isolated; the others
are written and the refused records are returned for the dead-letter topic. Before a row is
refused, an empty insert into its table checks that the server itself is well: if that fails
too, the refusal was a server condition (an error code we do not know) and the whole batch is
retried instead, so no good row is dead-lettered because a server is unwell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from streams.sink.buffer import Batch, Entry
from streams.sink.rows import Row, Table
from streams.warehouse.clickhouse import ServerConditionError, first_line, is_unavailable

Insert = Callable[[Table, list[Row]], None]


@dataclass
class WriteResult:
    inserted: dict[str, int] = field(default_factory=dict)  # rows by table name
    refused: dict[int, tuple[Entry, str]] = field(default_factory=dict)  # by id(entry)


def write_batch(insert: Insert, batch: Batch) -> WriteResult:
    """Write every table's rows of ``batch``; raises if ClickHouse is unavailable."""
    result = WriteResult()
    for table, items in batch.by_table().items():
        _write(insert, table, items, result)
    return result


def _write(
    insert: Insert, table: Table, items: list[tuple[Row, Entry]], result: WriteResult
) -> None:
    try:
        insert(table, [row for row, _ in items])
    except Exception as exc:
        if is_unavailable(exc):
            raise
        if len(items) == 1:
            _check_server(insert, table, exc)
            entry = items[0][1]
            result.refused.setdefault(id(entry), (entry, f"{type(exc).__name__}: {exc}"))
            return
        half = len(items) // 2
        _write(insert, table, items[:half], result)
        _write(insert, table, items[half:], result)
        return
    result.inserted[table.name] = result.inserted.get(table.name, 0) + len(items)


def _check_server(insert: Insert, table: Table, refusal: Exception) -> None:
    """Raise ServerConditionError unless ClickHouse takes an empty insert into ``table``."""
    try:
        insert(table, [])
    except Exception as exc:
        raise ServerConditionError(
            f"ClickHouse refused a row ({first_line(refusal)}) and an empty insert into "
            f"{table.name} too ({first_line(exc)}): a server condition; batch retried"
        ) from None
