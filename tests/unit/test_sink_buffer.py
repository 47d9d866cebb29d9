"""The sink's buffer: size and time bounds, prefix batches, offsets to commit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.sink.buffer import Buffer, Entry
from streams.sink.rows import MOVEMENTS


def entry(
    offset: int, rows: int = 1, partition: int = 0, at: float = 0.0, topic: str = "m"
) -> Entry:
    return Entry(
        topic, partition, offset, MOVEMENTS, tuple((offset, i) for i in range(rows)), added_at=at
    )


def test_a_batch_is_due_when_it_holds_batch_rows_rows() -> None:
    """Given batch_rows=3 and a long max age, when rows arrive one by one, then the buffer is
    due at the third row and not before."""
    buf = Buffer(batch_rows=3, max_age=60, capacity=10)
    buf.add(entry(0))
    buf.add(entry(1))
    assert not buf.due(now=1.0)
    buf.add(entry(2))
    assert buf.due(now=1.0)


def test_a_batch_is_due_when_its_oldest_record_is_max_age_old() -> None:
    """Given max_age=1 s, when one record added at t=10 waits, then it is due at t=11."""
    buf = Buffer(batch_rows=100, max_age=1.0, capacity=1000)
    buf.add(entry(0, at=10.0))
    assert not buf.due(now=10.9)
    assert buf.due(now=11.0)


def test_an_empty_buffer_is_never_due() -> None:
    """Given nothing buffered, when time passes, then no batch is due."""
    assert not Buffer(batch_rows=1, max_age=0.0, capacity=1).due(now=1e9)


def test_a_batch_is_the_oldest_records_up_to_batch_rows_and_stays_until_done() -> None:
    """Given 5 one-row records and batch_rows=2, when a batch is taken twice without done,
    then both are the first two records; after done the next batch starts at the third."""
    buf = Buffer(batch_rows=2, max_age=1, capacity=10)
    for i in range(5):
        buf.add(entry(i))
    first = buf.take()
    assert [e.offset for e in first.entries] == [0, 1]
    assert buf.take() == first
    buf.done(first)
    assert [e.offset for e in buf.take().entries] == [2, 3]
    assert buf.rows == 3


def test_a_record_larger_than_a_batch_is_taken_alone() -> None:
    """Given a level record of 5 rows and batch_rows=2, when a batch is taken, then it is
    that one record (a batch never splits a record)."""
    buf = Buffer(batch_rows=2, max_age=1, capacity=10)
    buf.add(entry(0, rows=5))
    buf.add(entry(1))
    assert [e.offset for e in buf.take().entries] == [0]


def test_the_buffer_is_full_at_capacity() -> None:
    """Given capacity 4, when 4 rows are buffered, then it is full with no room."""
    buf = Buffer(batch_rows=2, max_age=1, capacity=4)
    buf.add(entry(0, rows=3))
    assert not buf.full and buf.room == 1
    buf.add(entry(1))
    assert buf.full and buf.room == 0


def test_dropping_lost_partitions_keeps_the_others_in_order() -> None:
    """Given records of partitions 0 and 1, when partition 1 is revoked, then only
    partition 0's records remain, in order, and the row count follows."""
    buf = Buffer(batch_rows=10, max_age=1, capacity=100)
    for i in range(6):
        buf.add(entry(i, partition=i % 2, rows=2))
    assert buf.drop([("m", 1)]) == 3
    assert [e.offset for e in buf.take().entries] == [0, 2, 4]
    assert buf.rows == 6


@given(
    st.lists(
        st.tuples(st.sampled_from(["m", "l"]), st.integers(0, 3), st.integers(0, 3)),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 8),
)
def test_committed_offsets_never_pass_a_record_still_buffered(
    records: list[tuple[str, int, int]], batch_rows: int
) -> None:
    """Given any interleaving of records over topics and partitions (offsets increasing per
    partition, some records without rows), when batches are taken and done one by one, then
    each commit is exactly one past the last offset of that partition taken so far, and
    never reaches the offset of a record still in the buffer."""
    buf = Buffer(batch_rows=batch_rows, max_age=1, capacity=10_000)
    next_offset: dict[tuple[str, int], int] = {}
    for topic, partition, rows in records:
        offset = next_offset.get((topic, partition), 0)
        next_offset[(topic, partition)] = offset + 1
        buf.add(entry(offset, rows=rows, partition=partition, topic=topic))
    committed: dict[tuple[str, int], int] = {}
    while len(buf):
        batch = buf.take()
        buf.done(batch)
        for tp, offset in batch.commit_offsets().items():
            assert offset > committed.get(tp, 0)
            committed[tp] = offset
        for e in buf.take().entries:
            assert committed.get((e.topic, e.partition), 0) <= e.offset
    assert committed == next_offset


def test_batch_rows_above_capacity_is_refused() -> None:
    """Given batch_rows larger than capacity, when the buffer is made, then ValueError."""
    with pytest.raises(ValueError, match="batch_rows"):
        Buffer(batch_rows=10, max_age=1, capacity=5)
