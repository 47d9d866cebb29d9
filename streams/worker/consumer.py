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

Here: a batch taken from the fetcher before or during a seek is not delivered once the seek
ran, and the consumer seeks to the committed offsets again (so everything from the
committed offset is read again, the ledger skipping what it applied by its per-SKU input
position); a partition of that batch with no committed offset yet (a new group, or one that
never committed there) is not moved by that seek (aiokafka's ``seek_to_committed`` skips
it), so it is sought to the first record this process fetched of it (events delivered
before the seek may have been dropped from the agent's channel too); and nothing is
committed while the lowest acknowledged offset is above the committed one. The ledger's
input has no transactional producers (no control records), so an offset that is never
acknowledged is an event that was not processed.

``tests/unit/test_ledger_consumer.py`` pins the Faust version and the source of the methods
this relies on: a Faust upgrade must re-read them before it passes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP, Message

log = logging.getLogger("stockflow.ledger")

FAUST_VERSION = "0.15.3"


class SeekSafeConsumer(Consumer):
    """Faust's aiokafka consumer whose seeks cut the batch in delivery, and whose commits
    never pass an offset that was not acknowledged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seeks = 0  # +1 when a seek starts, +1 when it ends
        self._first_fetched: dict[TP, int] = {}  # per partition, the lowest offset fetched

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
        self._seeks += 1
        try:
            await super().perform_seek()
        finally:
            self._seeks += 1

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109 (Faust's signature)
        seeks = self._seeks
        cut = False
        batch = super().getmany(timeout)
        try:
            async for tp, message in batch:
                if self._seeks != seeks:
                    cut = True  # taken from the fetcher around a seek: not delivered
                    break
                yield tp, message
                if self._seeks != seeks:
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
                await self._seek_uncommitted()
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
            if tp in assigned and not committed:  # None or 0: seek_to_committed skipped it
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
            if lowest > committed:
                return None  # the offset at the committed position is not acknowledged
        result: int | None = super()._new_offset(tp)
        return result
