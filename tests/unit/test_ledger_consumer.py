"""The ledger's consumer never commits past an input event it did not process, when a seek
lands while a fetched batch is being delivered (streams/worker/consumer.py)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaThreadedConsumer
from faust.types import TP

from streams.worker.consumer import (
    FAUST_VERSION,
    FETCH_MAX_WAIT_MS,
    FETCH_MIN_BYTES,
    HELD_REREAD_S,
    STARVED_S,
    SeekSafeConsumer,
)
from streams.worker.producer import LedgerApp

TOPIC = "stock.events.v1"
COMMITTED = 100

# The Faust code the consumer's fix is written against, as read for faust-streaming 0.15.3.
READ = {
    Consumer.perform_seek: "0e8c130ff4b0afd8",
    Consumer.getmany: "4b168d84882a70d6",
    Consumer._new_offset: "1d2c7ea89a7ad4f1",
    Consumer._add_gap: "4df2573ded7c1c2c",
    Consumer._drain_messages: "44a2500309e83c63",
    Recovery._resume_streams: "d986a6710c1aca98",
    AIOKafkaConsumerThread._create_worker_consumer: "c2701bfc3e6f6cad",
    AIOKafkaThreadedConsumer._new_consumer_thread: "0870ec53dea75083",
    AIOKafkaConsumer.start: "2f1ba70443327538",  # reads _fetch_min_bytes, _fetch_max_wait_ms
}


def test_the_faust_code_the_consumer_fix_relies_on_is_the_code_that_was_read() -> None:
    """Given the installed Faust, when the version and the source of the consumer and
    recovery methods the fix relies on are compared with those it was written against,
    then they are the same; an upgrade fails here until streams/worker/consumer.py is
    checked against it."""
    assert faust.__version__ == FAUST_VERSION
    for method, digest in READ.items():
        source = inspect.getsource(method).encode()
        assert hashlib.sha256(source).hexdigest()[:16] == digest, method.__qualname__


async def _seek_during_delivery(
    *, seek_at: int, in_flight: bool, committed: bool = True
) -> tuple[list[int], set[int]]:
    """The consumer's ``_drain_messages`` delivers offsets 100..119 of a partition just
    assigned (committed offset 100), in batches of 10 taken from a fetcher that reads on
    from its position, into a channel; the agent takes offset 100 at once and the others
    later. When offset ``seek_at`` is delivered (or, for ``seek_at`` 0, while the second
    batch is being fetched), the streams' seek to the committed offsets runs
    (``Recovery._resume_streams``), then the channel is emptied (``flow_control.resume()``);
    ``in_flight``: that delivery waits for the seek and puts its event after the channel
    was emptied. Not ``committed``: the group never committed there, and the seek to the
    committed offsets leaves the fetcher where it is (as aiokafka does). Returns the offsets
    the consumer commits one after the other and the
    offsets the agent processed (acknowledged after processing)."""
    app = LedgerApp("consumer-test", broker="kafka://127.0.0.1:9", autodiscover=False)
    app.topic(TOPIC, key_type=bytes, value_type=bytes)
    consumer = app.consumer  # made in the running loop, as a worker makes it
    assert isinstance(consumer, SeekSafeConsumer)
    tp = TP(TOPIC, 0)
    app.topics._acking_topics.add(TOPIC)
    consumer._set_active_tps({tp})
    position = [COMMITTED]  # the fetcher's, as aiokafka sets it on assignment
    fetches = [0]

    async def fetched(active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
        fetches[0] += 1
        if seek_at == 0 and fetches[0] == 2:
            seek_now.set()  # the seek lands while this fetch waits for its records
            await seeked.wait()
        await asyncio.sleep(0.001)
        start = position[0]
        position[0] = min(start + 10, 120)
        return {tp: [SimpleNamespace(offset=o) for o in range(start, position[0])]}

    def to_message(tp_: TP, record: Any) -> faust.types.Message:
        return faust.types.Message(
            TOPIC,
            0,
            record.offset,
            0.0,
            0,
            None,
            b"k",
            b"v",
            None,
            tp=tp_,
            generation_id=app.consumer_generation_id,
        )

    async def seek_to_committed() -> dict[TP, int | None]:
        await asyncio.sleep(0)  # the coordinator's answer
        if not committed:
            return {tp: None}
        position[0] = COMMITTED
        return {tp: COMMITTED}

    async def seek(tp_: TP, offset: int) -> None:
        position[0] = offset

    consumer._getmany = fetched  # the records aiokafka's fetcher holds
    consumer._to_message = to_message
    consumer.highwater = lambda tp_: 200
    consumer.seek_to_committed = seek_to_committed
    consumer._seek = seek
    consumer.assignment = lambda: {tp}
    channel: list[Any] = []
    processed: set[int] = set()
    seek_now, seeked = asyncio.Event(), asyncio.Event()

    def process(message: Any) -> None:
        processed.add(message.offset)
        consumer.ack(message)

    async def deliver(message: Any) -> None:
        if message.offset == seek_at and not seeked.is_set():
            seek_now.set()
            if in_flight:
                await seeked.wait()
        channel.append(message)
        if message.offset == COMMITTED and not processed:
            channel.remove(message)
            process(message)

    async def resume_streams() -> None:
        await seek_now.wait()
        await consumer.perform_seek()
        channel.clear()
        seeked.set()

    consumer.callback = deliver
    fetcher = SimpleNamespace(_stopped=asyncio.Event())
    recovery = asyncio.create_task(resume_streams())
    drain = asyncio.create_task(consumer._drain_messages(fetcher))
    for _ in range(100):
        await asyncio.sleep(0.002)
        while channel:
            process(channel.pop(0))
    fetcher._stopped.set()
    await asyncio.sleep(0.01)
    drain.cancel()
    recovery.cancel()
    consumer._thread.thread_loop.close()  # the consumer thread's own loop, never started
    commits: list[int] = []
    while (offset := consumer._new_offset(tp)) is not None:
        commits.append(offset)
        consumer._committed_offset[tp] = offset
    return commits, processed


@pytest.mark.parametrize(
    ("seek_at", "in_flight"), [(102, True), (103, True), (102, False), (104, False), (0, False)]
)
def test_a_seek_during_the_delivery_of_a_batch_commits_nothing_past_an_unprocessed_event(
    seek_at: int, in_flight: bool
) -> None:
    """Given a ledger worker whose input partition was just assigned at committed offset
    100, and a batch of offsets 100..109 being delivered to the agent,
    when the seek to the committed offsets lands during that delivery, or while the next
    batch is fetched, and the channel's waiting events are dropped (as Faust resumes the
    streams after a rebalance),
    then every offset the consumer commits is above events the agent processed only, and
    the events dropped are read again and processed: nothing is lost, nothing stalls."""
    commits, processed = asyncio.run(_seek_during_delivery(seek_at=seek_at, in_flight=in_flight))
    unprocessed = [
        o for o in range(COMMITTED, max(commits, default=COMMITTED)) if o not in processed
    ]
    assert unprocessed == [], (commits, sorted(processed))
    assert set(range(100, 120)) <= processed
    assert commits and commits[-1] == 120


@pytest.mark.parametrize(("seek_at", "in_flight"), [(102, True), (104, False), (0, False)])
def test_a_seek_during_the_delivery_of_a_batch_loses_nothing_where_nothing_was_committed(
    seek_at: int, in_flight: bool
) -> None:
    """Given a ledger worker whose group never committed on its input partition (a new
    group), and a batch of offsets 100..109 being delivered to the agent,
    when the seek to the committed offsets lands during that delivery, right after it, or
    while the next batch is fetched (that seek leaves the fetcher where it is),
    then the events dropped are read again from the first one fetched and processed:
    nothing is lost."""
    commits, processed = asyncio.run(
        _seek_during_delivery(seek_at=seek_at, in_flight=in_flight, committed=False)
    )
    assert set(range(100, 120)) <= processed, sorted(processed)
    assert commits and commits[-1] == 120


def _committed_at(offset: int) -> tuple[Any, TP]:
    """A ledger app's consumer (in the running loop, its thread never started) whose input
    partition is committed at ``offset``."""
    app = LedgerApp("consumer-test", broker="kafka://127.0.0.1:9", autodiscover=False)
    app.topic(TOPIC, key_type=bytes, value_type=bytes)
    app.topics._acking_topics.add(TOPIC)
    consumer = app.consumer
    consumer._thread.thread_loop.close()
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = offset
    return consumer, tp


def _clocked(consumer: Any) -> tuple[list[float], list[int]]:
    """Gives ``consumer`` a clock the test moves (``now[0]``) and records the offsets it
    seeks to instead of seeking."""
    now = [1000.0]
    consumer.clock = lambda: now[0]
    sought: list[int] = []

    async def seek(tp_: TP, offset: int) -> None:
        sought.append(offset)

    consumer._seek = seek
    return now, sought


def _message(tp: TP, offset: int) -> faust.types.Message:
    return faust.types.Message(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=tp)


def test_an_unacknowledged_event_at_the_committed_offset_holds_the_commit() -> None:
    """Given a consumer whose partition is committed at offset 100,
    when events 101 and 102 are acknowledged but 100 is not,
    then nothing is committed (Faust's own check lets one missing offset at the head
    through), and once 100 is acknowledged the commit moves to 103."""

    async def main() -> tuple[int | None, int | None]:
        consumer, tp = _committed_at(COMMITTED)
        message = functools.partial(_message, tp)

        for offset in (101, 102):
            consumer.ack(message(offset))
        held = consumer._new_offset(tp)
        consumer.ack(message(COMMITTED))
        return held, consumer._new_offset(tp)

    assert asyncio.run(main()) == (None, 103)


def test_a_batch_in_delivery_is_given_up_unread_when_the_flow_is_suspended() -> None:
    """Given a ledger consumer delivering a fetched batch of offsets 100..109 whose delivery
    of offset 103 waits on a full stream buffer,
    when a rebalance suspends the flow,
    then the batch is given up at once: offsets 100..102 are marked read, 103 and after are
    neither delivered nor marked read (they are fetched again once the rebalance is over),
    and the drain waited once for the whole batch, not once per message."""

    async def main() -> tuple[list[int], int | None, int]:
        app = LedgerApp("consumer-test", broker="kafka://127.0.0.1:9", autodiscover=False)
        app.topic(TOPIC, key_type=bytes, value_type=bytes)
        consumer = app.consumer
        assert isinstance(consumer, SeekSafeConsumer)
        tp = TP(TOPIC, 0)
        consumer._set_active_tps({tp})
        fetches = [0]

        async def fetched(active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
            fetches[0] += 1
            if fetches[0] > 1:
                await asyncio.sleep(10)  # nothing more to fetch
            return {tp: [SimpleNamespace(offset=o) for o in range(100, 110)]}

        def to_message(tp_: TP, record: Any) -> faust.types.Message:
            return faust.types.Message(TOPIC, 0, record.offset, 0.0, 0, None, b"k", b"v", None)

        consumer._getmany = fetched
        consumer._to_message = to_message
        consumer.highwater = lambda tp_: 200
        delivered: list[int] = []
        full = asyncio.Event()

        async def deliver(message: Any) -> None:
            if message.offset == 103:
                full.set()
                await asyncio.sleep(10)  # the stream's buffer is full
            delivered.append(message.offset)

        consumer.callback = deliver
        waits = [0]
        wait_first = consumer.wait_first

        async def counted(*coros: Any, **kwargs: Any) -> Any:
            waits[0] += 1
            return await wait_first(*coros, **kwargs)

        consumer.wait_first = counted  # type: ignore[method-assign]
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        drain = asyncio.create_task(consumer._drain_messages(fetcher))
        await asyncio.wait_for(full.wait(), 5)
        consumer.suspend_flow.set()
        for _ in range(20):
            await asyncio.sleep(0.001)
        read = consumer._read_offset[tp]
        fetcher._stopped.set()
        drain.cancel()
        consumer._thread.thread_loop.close()
        return delivered, read, waits[0]

    delivered, read, waits = asyncio.run(main())
    assert delivered == [100, 101, 102]
    assert read == 102
    assert waits == 1


def test_records_fetched_while_a_seek_to_the_committed_offsets_runs_are_not_delivered() -> None:
    """Given a ledger worker given back its input partition, committed at offset 100, whose
    fetcher stands at offset 110 (an offset reset to the end of the log),
    when records are fetched there while the streams' seek to the committed offsets waits
    for the coordinator,
    then none of them is delivered: once the seek ran, offsets 100..119 reach the agent in
    order, and the ledger, which skips an event at or below the last one it applied,
    applies every one of them."""

    async def main() -> list[int]:
        consumer, tp = _committed_at(COMMITTED)
        consumer._set_active_tps({tp})
        consumer.assignment = lambda: {tp}
        position = [110]
        answer = asyncio.Event()  # the coordinator's answer to the seek

        async def fetched(active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
            await asyncio.sleep(0.001)
            start = position[0]
            position[0] = min(start + 5, 120)
            return {tp: [SimpleNamespace(offset=o) for o in range(start, position[0])]}

        async def seek_to_committed() -> dict[TP, int | None]:
            await answer.wait()
            position[0] = COMMITTED
            return {tp: COMMITTED}

        consumer._getmany = fetched
        consumer._to_message = lambda tp_, record: _message(tp_, record.offset)
        consumer.highwater = lambda tp_: 120
        consumer.seek_to_committed = seek_to_committed
        applied: list[int] = []

        async def deliver(message: Any) -> None:
            if not applied or message.offset > applied[-1]:  # the ledger's input position
                applied.append(message.offset)
            consumer.ack(message)

        consumer.callback = deliver
        seek = asyncio.create_task(consumer.perform_seek())  # Recovery._resume_streams
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        drain = asyncio.create_task(consumer._drain_messages(fetcher))
        await asyncio.sleep(0.02)
        answer.set()
        await seek
        for _ in range(50):
            await asyncio.sleep(0.002)
        fetcher._stopped.set()
        drain.cancel()
        return applied

    assert asyncio.run(main()) == list(range(COMMITTED, 120))


def test_the_worker_s_consumer_drains_per_fetched_batch() -> None:
    """Given the ledger's app, when its consumer class is looked at, then its drain loop is
    the batch-wise one, not Faust's per-message loop."""
    assert SeekSafeConsumer._drain_messages is not Consumer._drain_messages


def test_a_commit_held_by_an_offset_never_acknowledged_reads_the_partition_again() -> None:
    """Given a consumer whose partition is committed at offset 100, with 101 and 102
    acknowledged and 100 never,
    when the commit has been held HELD_REREAD_S seconds,
    then the partition is sought back to 100 with its acknowledgements forgotten, and once
    100, 101 and 102 are processed again the commit moves to 103."""

    async def main() -> tuple[list[int], int | None, int | None]:
        consumer, tp = _committed_at(COMMITTED)
        message = functools.partial(_message, tp)
        consumer.flow_active = True
        consumer.assignment = lambda: {tp}
        now, sought = _clocked(consumer)

        for offset in (101, 102):
            consumer.ack(message(offset))
        assert consumer._new_offset(tp) is None
        now[0] += HELD_REREAD_S - 1
        assert consumer._new_offset(tp) is None
        await asyncio.sleep(0)
        held = list(sought)
        now[0] += 2
        late = consumer._new_offset(tp)
        await asyncio.sleep(0.01)
        for offset in (COMMITTED, 101, 102):
            consumer.ack(message(offset))
        return held + sought, late, consumer._new_offset(tp)

    assert asyncio.run(main()) == ([COMMITTED], None, 103)


def test_a_partition_starved_while_the_consumer_idles_is_fetched_again() -> None:
    """Given a consumer whose partition, committed at offset 100, has records up to 499
    and is left out of the partitions fetched (its stream's buffer once full, the call
    that puts it back lost),
    when it delivered hundreds of records in one STARVED_S window and none in the next,
    with the consumer idle, then only the second window finds it starved: it is fetched
    again and read again from offset 100."""

    async def main() -> tuple[list[Any], list[Any], bool, list[int]]:
        consumer, tp = _committed_at(COMMITTED)
        consumer.flow_active = True
        consumer.assignment = lambda: {tp}
        consumer.highwater = lambda tp_: 500
        consumer._set_active_tps(set())
        consumer._buffered_partitions.add(tp)
        now, sought = _clocked(consumer)
        consumer._read_offset[tp] = 120
        consumer.find_starved()
        now[0] += STARVED_S
        consumer._read_offset[tp] = 420  # delivering: not starved
        moving = consumer.find_starved()
        now[0] += STARVED_S
        starved = consumer.find_starved()
        await asyncio.sleep(0.01)
        return moving, starved, tp in consumer._get_active_partitions(), sought

    moving, starved, fetched, sought = asyncio.run(main())
    assert moving == []
    assert starved == [TP(TOPIC, 0)]
    assert fetched
    assert sought == [COMMITTED]


def test_the_worker_s_fetches_gather_records_instead_of_answering_per_record() -> None:
    """Given the ledger's app, when its consumer builds its aiokafka consumer, then fetches
    wait for 32 KiB or 5 ms (aiokafka's default answers as soon as one byte is there)."""

    async def main() -> Any:
        app = LedgerApp("consumer-test", broker="kafka://127.0.0.1:9", autodiscover=False)
        thread = app.consumer._thread  # the thread the consumer made (never started)
        built = thread._create_worker_consumer(app.transport)
        fetch = (built._fetch_min_bytes, built._fetch_max_wait_ms)
        await built.stop()
        thread.thread_loop.close()
        return fetch

    assert (FETCH_MIN_BYTES, FETCH_MAX_WAIT_MS) == (32 * 1024, 5)
    assert asyncio.run(main()) == (FETCH_MIN_BYTES, FETCH_MAX_WAIT_MS)
