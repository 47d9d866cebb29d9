"""Faust's consumer, without committing past events it dropped around a seek.

faust-streaming 0.15.3 loses an event of the input now and then when partitions are assigned
(one of eight kill storms on three workers lost one), in three steps:

1. After a rebalance, recovery resumes the flow (``faust.tables.recovery.Recovery``: its
   "Resuming flow..." steps), then ``Recovery._resume_streams`` resumes the input partitions
   and awaits ``Consumer.perform_seek`` (a round trip to the group coordinator). Records
   the fetcher already holds for those partitions are delivered meanwhile, into the
   agent's channel, and ``app.flow_control.resume()`` right after the seek empties the
   channels: events delivered but not yet taken by the agent are dropped, to be read again
   from the committed offset.
2. The fetcher goes on delivering the batch it fetched before the seek
   (``Consumer._drain_messages``: ``set_read_offset(tp, offset)`` after each delivery),
   so the read offset of the partition moves past the seek's position: the records read
   again from the committed offset are below it and are dropped ("DROPPED MESSAGE ROFF"),
   or, when the seek's read offset stood, the skipped offsets become a gap that
   ``Consumer._new_offset`` counts as acknowledged.
3. ``Consumer._new_offset`` refuses to commit over unacknowledged offsets at the head
   only when ``min(acked) - committed > 1``; but ``_committed_offset`` holds the next
   offset to read (what ``perform_seek`` reads from Kafka and ``_commit_offsets`` stores),
   so a single unacknowledged offset right at the committed position is committed over.

One event dropped in 1 and the offsets after it acknowledged: 3 commits past it, and no
worker ever applies it (its outputs never exist). Two or more dropped: the commit stalls
there until the next rebalance reads them again.

Here: a batch taken from the fetcher before or while a seek runs is not delivered, and the
consumer seeks to the committed offsets again (so everything from the
committed offset is read again, the ledger skipping what it applied by its per-SKU input
position); a partition with no committed offset yet (a new group, or one that never
committed there) is not moved by a seek to the committed offsets (aiokafka's
``seek_to_committed`` skips it), so every such seek also seeks it to the first record this
process fetched of it (events delivered before the seek, in this batch or an earlier one,
may have been dropped from the agent's channel); and nothing is
committed while the lowest acknowledged offset is above the committed one. The ledger's
input has no transactional producers (no control records), so an offset that is never
acknowledged is an event that was not processed.

Not delivering while a seek runs matters because the ledger skips an event at or below
its SKU's input position: an event applied out of order hides the events before it. A
kill storm on three workers (8 kills, 40,000 events) lost 1,169 outputs that way: a worker
given back its partitions after a 5 s rebalance had its fetcher at the end of the log
instead of the committed offset, and the records it fetched there were delivered while
the streams' seek to the committed offsets still waited for the coordinator. The ledger
applied those last 13 events first, then skipped as already applied the 500 below them
that the seek read again, and they were committed.

**Drain, per fetched batch.** Faust's ``Consumer._drain_messages`` hands each fetched
message to the streams with ``await self.wait_first(callback(message),
self.suspend_flow.wait())``: several tasks and an ``asyncio.wait`` per message (measured
here at about a tenth of the worker's time per event), so that a delivery blocked on a full
stream buffer is given up when a rebalance suspends the flow. :meth:`SeekSafeConsumer.
_drain_messages` keeps that loop line for line but waits the same way once per fetched
batch: one task delivers the batch's messages in order (``await callback(message)`` each)
and is given up, with the rest of the batch, when the flow is suspended or the consumer
stops. A message given up is not marked read (Faust marked it read and relied on the seek
to the committed offsets that follows every assignment), so the read offsets never pass
a message that was not handed to the streams. A batch delivered across a seek is cut as
above (the seek race a per-batch drain once stalled on: the rest of a batch fetched before
a restarted worker's seek moved the read offsets past the rewound records, which were then
dropped and never acknowledged).

**A held commit reads again.** Once in a while, after partitions moved between workers,
one offset at the committed position is never acknowledged while the events after it are
processed and acknowledged (seen on a worker given back, after a rebalance of three seconds,
the partition it had just held, with a batch cut at the seek): the commit then holds there
for good, whatever the agent does. A commit held ``HELD_REREAD_S`` seconds so is logged and
the partition read again from the committed offset, its acknowledgements forgotten (the
ledger skips what it applied by each SKU's input position; the order book drops events it
has seen), so the missing offset is delivered again and the commit moves on.

**A starved partition is fetched again.** Rarely, after partitions moved, one partition
of a worker gets a record a second or none while thousands wait, the worker otherwise
idle (both threads in ``select``), for a minute or more; the cause is not found. Every
5 s the consumer looks, while it waits on fetches (not on a full stream) and no seek or
recovery runs, for a partition whose last fetch showed records waiting past its read
offset (or that was never fetched since it was assigned) and that got fewer than
``CRAWL_EVENTS`` in ``STARVED_S`` seconds. It logs what held the partition (in Faust's
fetch set or not, left out by a full stream buffer or not, records aiokafka holds for it),
puts it back in the fetch set, and reads it again from the committed offset, as for a
held commit.

**Fetches gather records.** Faust leaves aiokafka's ``fetch_min_bytes`` at 1: under a
light load each fetch answers with a record or two, and each request and answer is encoded
and decoded in Python for every partition the worker holds, in the consumer's thread, which
takes the interpreter from the ledger. A fetch here waits for 32 KiB or 5 ms, whichever
comes first: at 500 events/s the worker's CPU went from 86 % to 66 % of a core (hand
runs; the README gives the latency figures); a heavy load fills 32 KiB at once. aiokafka
reads both values from the consumer when it starts (``AIOKafkaConsumer.start``), after
Faust built it.

``tests/unit/test_ledger_consumer.py`` pins the Faust version and the source of the methods
this relies on or replaces: a Faust upgrade must re-read them before it passes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP, Message
from mode import Service

log = logging.getLogger("stockflow.ledger")

FAUST_VERSION = "0.15.3"
HELD_REREAD_S = 30.0  # a commit held this long by one unacknowledged offset: read again
STARVED_S = 20.0  # records waiting and fewer than CRAWL_EVENTS delivered in this long...
CRAWL_EVENTS = 100  # ...while the consumer idled: the partition is starved


# A fetch answers once this much is there or after this long (Faust leaves the first at
# aiokafka's 1 byte, so a fetch per few records under a light load, and sets 1.5 s)
FETCH_MIN_BYTES = 32 * 1024
FETCH_MAX_WAIT_MS = 5


class _GatheringFetchThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer fetches at least ``FETCH_MIN_BYTES``
    or waits ``FETCH_MAX_WAIT_MS``: see the module's docstring."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_min_bytes = FETCH_MIN_BYTES
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class SeekSafeConsumer(Consumer):
    """Faust's aiokafka consumer whose seeks cut the batch in delivery, whose commits never
    pass an offset that was not acknowledged, and whose drain waits once per fetched batch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seeks_begun = 0  # seeks started
        self._seeks_ended = 0  # seeks ended: one is under way while the two differ
        self._first_fetched: dict[TP, int] = {}  # per partition, the lowest offset fetched
        self._held_since: dict[TP, float] = {}  # commits held by an unacknowledged offset
        self._rereads: set[asyncio.Task[None]] = set()
        self._delivering = False  # a fetched batch is being handed to the streams
        self._progress: dict[TP, tuple[int | None, float]] = {}  # read offset, since when
        self.clock = time.monotonic

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _GatheringFetchThread(self, loop=self.loop, beacon=self.beacon)

    async def _wait_next_records(
        self,
        timeout: float,  # noqa: ASYNC109 (Faust's signature)
    ) -> tuple[Mapping[TP, list[Any]] | None, set[TP] | None]:
        records, active = await super()._wait_next_records(timeout)
        first = self._first_fetched
        for tp, batch in (records or {}).items():
            if batch and (tp not in first or batch[0].offset < first[tp]):
                first[tp] = batch[0].offset
        return records, active

    async def perform_seek(self) -> None:
        self._seeks_begun += 1
        try:
            await super().perform_seek()
            # events already handed to the streams are dropped from their channels when the
            # flow resumes after this seek, whether their batch was cut or not
            await self._seek_uncommitted()
            self._held_since.clear()  # read again from the committed offsets: a new start
        finally:
            self._seeks_ended += 1

    def _seeking(self) -> bool:
        return self._seeks_begun != self._seeks_ended

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (Faust's signature)
        seeks = self._seeks_begun
        cut = False
        batch = super().getmany(timeout)
        try:
            async for tp, message in batch:
                if self._seeks_begun != seeks or self._seeks_ended != seeks:
                    # fetched before or while a seek moved the fetcher: from a position the
                    # seek replaces (an offset reset, say), not delivered
                    cut = True
                    break
                yield tp, message
                if self._seeks_begun != seeks:
                    cut = True  # delivered across a seek: its read offset passed the seek's
                    break
        finally:
            await batch.aclose()  # type: ignore[attr-defined]
        if cut and self.flow_active:
            # the fetcher's positions moved past records that were not delivered, or the
            # read offsets past the seek's: read again from the committed offsets (the
            # ledger skips what it applied already by each SKU's input position). With the
            # flow stopped a rebalance is under way, and it ends with that same seek.
            log.info("a batch fetched around a seek was cut; seeking to the committed offsets")
            try:
                await self.perform_seek()
            except Exception as exc:
                if not self.flow_active:
                    log.info("that seek met a rebalance (%r), which ends with its own seek", exc)
                    return
                log.critical(
                    "ledger stops: the seek after a cut batch failed (%r); a restart reads "
                    "again from the committed offsets",
                    exc,
                )
                await self.app.crash(exc)
                raise

    async def _seek_uncommitted(self) -> None:
        """Seek each assigned partition that has no committed offset to the first record
        this process fetched of it: the seek to the committed offsets left its position
        after records that were not delivered (the ledger skips those it applied)."""
        assigned = self.assignment()
        for tp, offset in self._first_fetched.items():
            committed = self._committed_offset.get(tp)
            if tp in assigned and not committed and self.app.topics.acks_enabled_for(tp.topic):
                # None or 0: seek_to_committed skipped it (a changelog is never committed)
                await self._seek(tp, offset)
                self._read_offset[tp] = None  # deliver from that record on, no gap

    def _new_offset(self, tp: TP) -> int | None:
        committed = self._committed_offset[tp]
        acked = self._acked[tp]
        if committed is not None and acked:
            lowest = min(acked)
            gap = self._gap[tp]
            if gap:
                lowest = min(lowest, gap.begin())
            if lowest > committed:  # the offset at the committed position is not acknowledged
                self._held(tp, committed)
                return None
        self._held_since.pop(tp, None)
        result: int | None = super()._new_offset(tp)
        return result

    def _held(self, tp: TP, committed: int) -> None:
        now = self.clock()
        since = self._held_since.setdefault(tp, now)
        if now - since < HELD_REREAD_S or not self.flow_active or self._seeking():
            return
        del self._held_since[tp]
        log.warning(
            "the commit of %s held %.0f s at offset %d, never acknowledged while later ones "
            "were: reading again from it",
            tp,
            now - since,
            committed,
        )
        self._read_again(tp, committed)

    def _read_again(self, tp: TP, committed: int) -> None:
        """Starts :meth:`_reread` in the background, keeping the task until it is done."""
        task = asyncio.ensure_future(self._reread(tp, committed))
        self._rereads.add(task)
        task.add_done_callback(self._rereads.discard)

    async def _reread(self, tp: TP, committed: int) -> None:
        """Forget ``tp``'s acknowledgements and read it again from ``committed``; counted
        as a seek, so a batch in delivery is cut (and read again from the committed
        offsets)."""
        self._seeks_begun += 1
        try:
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._gap.pop(tp, None)
            if tp in self.assignment():
                await self.seek(tp, committed)
        except Exception as exc:  # the next held commit tries again
            log.warning("reading %s again failed (%r)", tp, exc)
        finally:
            self._seeks_ended += 1

    @Service.timer(5.0)
    async def _watch_starved(self) -> None:
        try:
            self.find_starved()
        except Exception as exc:  # a look that failed must never stop the worker
            log.warning("looking for starved partitions failed (%r)", exc)

    def find_starved(self) -> list[TP]:
        """Partitions with records waiting that got fewer than ``CRAWL_EVENTS`` delivered in
        ``STARVED_S`` seconds while the consumer waited on fetches (not on a full stream):
        each is logged with what holds it, put back among the partitions fetched, and read
        again from its committed offset. Returns them."""
        now = self.clock()
        if not self.flow_active or self._seeking() or self._delivering or self.app.in_recovery:
            self._progress.clear()  # busy, or a rebalance: every partition starts over
            return []
        starved = []
        acks_enabled_for = self.app.topics.acks_enabled_for
        for tp in self.assignment():
            if tp in self._paused_partitions or not acks_enabled_for(tp.topic):
                continue
            read = self._read_offset.get(tp)
            waiting = self._waiting(tp, read)
            start, since = self._progress.setdefault(tp, (read, now))
            if waiting is None:
                self._progress[tp] = (read, now)  # nothing waits: the window starts over
            elif now - since >= STARVED_S:
                self._progress[tp] = (read, now)
                if (read or 0) - (start or 0) < CRAWL_EVENTS:
                    self._feed(tp, read, waiting, now - since)
                    starved.append(tp)
        return starved

    def _waiting(self, tp: TP, read: int | None) -> int | None:
        """Records known to wait in ``tp`` past the read offset, per the last fetch's high
        watermark; -1 when ``tp`` was never fetched since it was assigned; None when none,
        or when nothing was read or committed there (the position is the offset reset's)."""
        committed = self._committed_offset.get(tp)
        if read is None and committed is None:
            return None
        try:
            highwater = self.highwater(tp)
        except Exception:  # not (or no longer) assigned in the fetcher
            return None
        if highwater is None or highwater < 0:
            return -1
        position = read + 1 if read is not None else (committed or 0)
        return highwater - position if highwater > position else None

    def _feed(self, tp: TP, read: int | None, waiting: int, idle_s: float) -> None:
        committed = self._committed_offset.get(tp)
        log.warning(
            "%s starved: %s records waiting, fewer than %d delivered in %.0f s while the "
            "consumer idled (read offset %s, committed %s, in the fetch set %s, held back "
            "by a full stream %s, fetched records held for it %s); fetching it again from "
            "the committed offset",
            tp,
            waiting if waiting >= 0 else "unknown (never fetched since assigned)",
            CRAWL_EVENTS,
            idle_s,
            read,
            committed,
            tp in self._get_active_partitions(),
            tp in self._buffered_partitions,
            self._fetcher_holds(tp),
        )
        self._buffered_partitions.discard(tp)
        self._get_active_partitions().add(tp)
        if committed:
            self._read_again(tp, committed)

    def _fetcher_holds(self, tp: TP) -> bool | None:
        """Whether aiokafka's fetcher holds fetched records for ``tp`` (None when unknown)."""
        try:
            return tp in self._thread._ensure_consumer()._fetcher._records
        except Exception:
            return None

    async def _drain_messages(self, fetcher: Any) -> None:
        # Faust's loop (faust/transport/consumer.py, Consumer._drain_messages) with the
        # per-message wait_first moved around the batch: see the module's docstring.
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                messages = self.getmany(timeout=1.0)
                # Sleeping because sometimes getmany is called in a loop
                # never releasing to the event loop
                await self.sleep(0)
                if self.should_stop:
                    await messages.aclose()  # type: ignore[attr-defined]
                    continue
                # the fetch is awaited here, as in Faust's loop: never given up half-way
                # (records taken from the fetcher and dropped), and with the flow stopped
                # it waits for the flow to resume (Consumer._wait_next_records)
                first = await anext(messages, None)
                if first is not None:
                    self._delivering = True
                    try:
                        await self.wait_first(
                            self._deliver(first, messages), self.suspend_flow.wait()
                        )
                    finally:
                        self._delivering = False
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def _deliver(
        self, first: tuple[TP, Message], messages: AsyncIterator[tuple[TP, Message]]
    ) -> None:
        """Hand one fetched batch (``first``, then the rest of ``messages``) to the streams,
        in order (the body of Faust's loop)."""
        callback = self.callback
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        batch = _chain(first, messages)
        try:
            async for tp, message in batch:
                num_since_yield += 1
                if num_since_yield > yield_every:
                    await sleep(0)
                    num_since_yield = 0
                offset = message.offset
                r_offset = get_read_offset(tp)
                if r_offset is None or offset >= r_offset:
                    gap = offset - (r_offset or 0)
                    # We have a gap in income messages
                    if gap > 1 and r_offset and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await callback(message)
                    set_read_offset(tp, offset)
                else:
                    self.log.dev(
                        "DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value
                    )
        finally:
            await batch.aclose()  # type: ignore[attr-defined]
            await messages.aclose()  # type: ignore[attr-defined]


async def _chain(
    first: tuple[TP, Message], rest: AsyncIterator[tuple[TP, Message]]
) -> AsyncIterator[tuple[TP, Message]]:
    yield first
    async for item in rest:
        yield item
