"""Each feed file once: settled, read, its good rows published, its bad rows reported.

Order of work for one file (a crash at any point loses nothing and doubles nothing):

1. The file is taken only once it has settled: the same size and modification time at two
   scans in a row, and unmodified for ``settle_s``; ``*.part`` and hidden names are uploads
   in progress. After reading, it is looked at again: if it changed while being read, it
   is left for a later scan.
2. Its content hash is looked up among the files already processed (``SeenFiles``): a
   duplicate publishes nothing and goes where the first one went, with a report naming it.
3. Its events are published to ``stock.events.v1`` in batches and each bad row becomes a
   dead letter (component ``feeds``, reason ``bad_row``, the row's text as the original
   bytes, the file and line in the error), all acknowledged by Kafka; an unreadable file is
   one dead letter (reason ``unreadable_file``).
4. Only then is the hash recorded and the file moved to ``done/`` (``failed/`` when
   unreadable) with ``<name>.report.csv`` beside it when a row was bad. A crash before the
   record processes the file again: same event ids, which the ledger counts once.

Kafka not answering leaves the file where it is, to be taken again at the next scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.feeds.formats import read
from connectors.feeds.rows import BadRow, Unreadable
from connectors.feeds.seen import SeenFiles, digest
from connectors.feeds.sources import DONE, FAILED, Source
from connectors.framework import metrics
from connectors.framework.kafka import KafkaPublisher
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter

log = logging.getLogger(__name__)

COMPONENT = "feeds"
BATCH = 500  # events per acknowledged publish
MAX_ORIGINAL = 256 * 1024  # bytes of an unreadable file kept in its dead letter

Progress = Callable[[int, int], None]  # (events published, events in the file)


class Publisher(Protocol):
    async def events(self, events: Sequence[dict[str, Any]]) -> None: ...

    async def dead_letters(self, records: Sequence[dict[str, Any]]) -> None: ...


class KafkaFeedPublisher:
    """Events to ``stock.events.v1`` (keyed by SKU), dead letters to ``stock.deadletter.v1``
    (keyed by the file's name), each call returning once Kafka acknowledged all of it."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def events(self, events: Sequence[dict[str, Any]]) -> None:
        await self._publisher(events)

    async def dead_letters(self, records: Sequence[dict[str, Any]]) -> None:
        spec = topics.STOCK_DEADLETTER
        await self._publisher.produce(
            spec.name,
            [(r["key"] or b"", self._codec.encode(spec.value_schema, r)) for r in records],
        )


@dataclass(slots=True)
class Outcome:
    name: str
    digest: str
    status: str  # done, failed, duplicate
    kind: str = ""
    rows: int = 0
    applied: int = 0
    bad: list[BadRow] = field(default_factory=list)
    error: str = ""
    first: str = ""  # a duplicate: the name of the file first processed with this content
    folder: str = DONE

    def report(self) -> bytes | None:
        """``line;reason;message;text`` per bad row (or the file's own problem), or None."""
        rows: list[tuple[Any, ...]] = [(b.line, b.reason, b.message, b.text) for b in self.bad]
        if self.status == "failed":
            rows = [(0, "unreadable_file", self.error, "")]
        elif self.status == "duplicate":
            rows = [(0, "duplicate_file", f"same content as {self.first}: nothing applied", "")]
        if not rows:
            return None
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(("line", "reason", "message", "text"))
        writer.writerows(rows)
        return out.getvalue().encode()

    def summary(self) -> str:
        if self.status == "duplicate":
            return f"{self.name}: duplicate of {self.first}, nothing applied"
        if self.status == "failed":
            return f"{self.name}: unreadable: {self.error}"
        return (
            f"{self.name}: {self.kind}, {self.rows} rows, {self.applied} events published, "
            f"{len(self.bad)} bad rows"
        )


class FeedImporter:
    """One file's content → events and dead letters (steps 2-4 of the module's order)."""

    def __init__(
        self,
        publisher: Publisher,
        seen: SeenFiles,
        *,
        locations: Mapping[str, str] | None = None,
        batch: int = BATCH,
    ) -> None:
        self.publisher = publisher
        self.seen = seen
        self.locations = dict(locations or {})
        self.batch = batch

    async def take(
        self, name: str, data: bytes, *, again: bool = False, progress: Progress | None = None
    ) -> Outcome:
        key = digest(data)
        first = self.seen.get(key)
        if first is not None and not again:
            folder = FAILED if first["status"] == "failed" else DONE
            return Outcome(name, key, "duplicate", first=first["name"], folder=folder)
        try:
            parsed = read(data, locations=self.locations)
        except Unreadable as exc:
            outcome = Outcome(name, key, "failed", error=str(exc), folder=FAILED)
            record = dead_letter(
                metrics.DEAD_LETTERS,
                component=COMPONENT,
                reason="unreadable_file",
                error=f"{name}: {exc}",
                original=data[:MAX_ORIGINAL],
                key=name.encode(),
            )
            await self.publisher.dead_letters([record])
            self.seen.add(key, name, "failed")
            return outcome
        events = [event for _, event in parsed.events]
        for start in range(0, len(events), self.batch):
            await self.publisher.events(events[start : start + self.batch])
            if progress is not None:
                progress(min(start + self.batch, len(events)), len(events))
        if progress is not None and not events:
            progress(0, 0)
        if parsed.bad:
            await self.publisher.dead_letters(
                [
                    dead_letter(
                        metrics.DEAD_LETTERS,
                        component=COMPONENT,
                        reason="bad_row",
                        error=f"{name} line {bad.line}: {bad.reason}: {bad.message}",
                        original=bad.text.encode(),
                        key=name.encode(),
                    )
                    for bad in parsed.bad
                ]
            )
        self.seen.add(key, name, "done")
        return Outcome(name, key, "done", parsed.kind, parsed.rows, len(events), list(parsed.bad))


class Watcher:
    """Scans ``source`` every ``interval_s``; takes each settled file (module's step 1)."""

    def __init__(
        self,
        source: Source,
        importer: FeedImporter,
        *,
        settle_s: float = 2.0,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.importer = importer
        self.settle_s = settle_s
        self.interval_s = interval_s
        self.clock = clock
        self._last: dict[str, tuple[int, float]] = {}
        self.outcomes: list[Outcome] = []

    async def scan(self) -> list[Outcome]:
        """One pass over the folder: the outcomes of the files taken in it."""
        done: list[Outcome] = []
        entries = await self.source.entries()
        self._last = {e.name: self._last[e.name] for e in entries if e.name in self._last}
        for entry in entries:
            shape = (entry.size, entry.mtime)
            before, self._last[entry.name] = self._last.get(entry.name), shape
            if before != shape or self.clock() - entry.mtime < self.settle_s:
                continue  # still being written, or not seen settled yet
            data = await self.source.read(entry.name)
            after = await self.source.stat(entry.name)
            if after is None or (after.size, after.mtime) != shape or len(data) != entry.size:
                log.info("%s changed while being read; taken once it settles", entry.name)
                continue
            outcome = await self.importer.take(entry.name, data)
            report = outcome.report()
            where = await self.source.finish(entry.name, outcome.folder, outcome.digest, report)
            del self._last[entry.name]
            log.info("%s → %s", outcome.summary(), where)
            done.append(outcome)
        self.outcomes.extend(done)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Scans until ``stop`` is set; a failing scan (source or Kafka away) is logged and
        tried again at the next interval, the file left where it is."""
        log.info("watching %s (settle %.1fs, every %.1fs)", self.source.where, self.settle_s,
                 self.interval_s)  # fmt: skip
        while not stop.is_set():
            try:
                await self.scan()
            except Exception as exc:  # the watcher outlives one bad scan
                log.warning("feeds scan of %s failed: %s", self.source.where, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
