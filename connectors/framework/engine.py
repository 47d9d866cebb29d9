"""The outbound engine: stock levels in, channel pushes out, one lane per channel.

Order of work for one channel (a *lane*):

1. ``offer`` keeps, per SKU, only the newest level version: an older or equal version is
   dropped on arrival, a newer one replaces what is still waiting (coalescing).
2. The lane's single worker waits the coalescing window (real-time mode) or the next tick
   (every-N-seconds mode), then pushes what is waiting in batches of the channel's size.
3. Each result: ``ok`` records the lag; ``retry`` puts the item back unless a newer version
   is already waiting, and pauses the lane for the channel's ``Retry-After`` or a jittered
   backoff; after ``max_attempts`` failures (throttles do not count) the item goes to the
   dead-letter sink and its SKU becomes *dirty*; ``refused`` is a drift alert (no retry
   until the next change or reconciliation). A ``failed`` result marked ``permanent`` (the
   channel refused the item's own data: an invalid offer) is dead-lettered once and not made
   dirty: pushing the same version again cannot pass, so it waits, like a refusal, for the
   SKU's next change or reconciliation.
4. Dirty SKUs heal without anyone: as soon as the channel acknowledges any push, every SKU
   made dirty by a transient failure (5xx, network) is queued again; every
   ``dirty_retry_s`` an idle lane probes the channel by pushing all its dirty SKUs again
   (those the channel refused as a request, e.g. bad credentials, only this way). A dirty
   SKU that fails again is not dead-lettered a second time (it stays dirty). The dirty
   items and the acknowledged ones are kept in a :class:`LaneStore` (the state folder) so
   a restart forgets neither.

Because each lane has exactly one worker and a waiting item is always newer than anything
pushed before it, a channel never receives an older version after a newer one. A throttled
channel pauses only its own lane; the others keep syncing.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import AsyncIterable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Protocol

from connectors.framework import metrics, redact
from connectors.framework.ratelimit import backoff_delay
from connectors.framework.types import (
    ChannelPusher,
    DeadLetterSink,
    Outcome,
    PushItem,
    PushResult,
    RefusalSink,
)
from schemas.times import now_ms


@dataclass(frozen=True, slots=True)
class LanePolicy:
    """How one channel is synced. ``interval_s=None`` is real time (the default)."""

    interval_s: float | None = None
    coalesce_s: float = 0.05
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 60.0
    dirty_retry_s: float = 30.0


class LaneStore(Protocol):
    """Where a lane keeps what must survive a restart (see ``connectors.framework.state``)."""

    def load(self, channel: str) -> tuple[dict[str, PushItem], dict[str, PushItem]]:
        """The (acknowledged, dirty) items saved for ``channel``."""
        ...

    def save_dirty(self, channel: str, dirty: Mapping[str, PushItem]) -> None: ...

    def save_acked(self, channel: str, acked: Mapping[str, PushItem]) -> None: ...


async def _no_sink(item: PushItem, error: str) -> None:
    return None


class Lane:
    """Pending quantities and the single pushing worker of one channel."""

    def __init__(
        self,
        pusher: ChannelPusher,
        policy: LanePolicy,
        *,
        dead_letter: DeadLetterSink,
        refused: RefusalSink,
        rng: random.Random,
        store: LaneStore | None = None,
    ) -> None:
        self.pusher = pusher
        self.channel = pusher.channel
        self.policy = policy
        self.pending: dict[str, PushItem] = {}
        self.latest: dict[str, PushItem] = {}
        self.acked: dict[str, PushItem] = {}
        self.recent: dict[str, deque[int]] = {}  # last quantities the channel acknowledged
        self.dirty: dict[str, PushItem] = {}  # finally failed; pushed again when it answers
        self._transient: set[str] = set()  # dirty after retries ran out (not a refusal)
        self._store = store
        if store is not None:
            acked, dirty = store.load(self.channel)
            for sku, item in acked.items():
                self.acked[sku] = self.latest[sku] = item
            for sku, item in dirty.items():
                if sku not in self.latest or item.version > self.latest[sku].version:
                    self.latest[sku] = item
                self.dirty[sku] = item
                self._transient.add(sku)
            metrics.DIRTY.labels(self.channel).set(len(self.dirty))
        self._dead_letter = dead_letter
        self._refused = refused
        self._rng = rng
        self._wake = asyncio.Event()
        self._not_before = 0.0
        self.busy = False

    def offer(self, item: PushItem) -> bool:
        current = self.latest.get(item.sku)
        if current is not None and item.version <= current.version:
            metrics.PUSHES.labels(self.channel, "superseded").inc()
            return False
        if item.sku in self.pending:
            metrics.PUSHES.labels(self.channel, "superseded").inc()
        self.latest[item.sku] = item
        self.pending[item.sku] = item
        self._wake.set()
        return True

    def force(self, sku: str) -> bool:
        """Push the newest known quantity of ``sku`` again (drift correction)."""
        item = self.latest.get(sku)
        if item is None or sku in self.pending:
            return False
        self.pending[sku] = replace(item, attempt=0)
        self._wake.set()
        return True

    def heal(self, *, transient_only: bool = False) -> int:
        """Queue the dirty SKUs again (only those of transient failures if asked); returns
        how many were queued."""
        skus = self._transient if transient_only else self.dirty
        return sum(self.force(sku) for sku in list(skus))

    def save(self) -> None:
        """Keep the acknowledged quantities (called when the levels offsets are committed)."""
        if self._store is not None:
            self._store.save_acked(self.channel, self.acked)

    def _mark_dirty(self, item: PushItem, *, transient: bool) -> None:
        self.dirty[item.sku] = item
        if transient:
            self._transient.add(item.sku)
        else:
            self._transient.discard(item.sku)
        metrics.DIRTY.labels(self.channel).set(len(self.dirty))
        if self._store is not None:
            self._store.save_dirty(self.channel, self.dirty)

    def _mark_clean(self, sku: str) -> None:
        self._transient.discard(sku)
        if self.dirty.pop(sku, None) is not None:
            metrics.DIRTY.labels(self.channel).set(len(self.dirty))
            if self._store is not None:
                self._store.save_dirty(self.channel, self.dirty)

    @property
    def idle(self) -> bool:
        return not self.pending and not self.busy

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.dirty:
            self.heal()  # restored from the store: try them once at start
        while True:
            try:
                async with asyncio.timeout(self.policy.dirty_retry_s if self.dirty else None):
                    await self._wake.wait()
            except TimeoutError:
                self.heal()  # idle with dirty SKUs: probe the channel with them
            if self.policy.interval_s is not None:
                await asyncio.sleep(self.policy.interval_s)
            else:
                await asyncio.sleep(self.policy.coalesce_s)
            self._wake.clear()
            while self.pending:
                pause = self._not_before - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                batch = self._take()
                self.busy = True
                try:
                    results = await self._push(batch)
                    await self._settle(results, loop.time())
                finally:
                    self.busy = False

    def _take(self) -> list[PushItem]:
        batch: list[PushItem] = []
        for sku in list(self.pending)[: max(1, self.pusher.max_batch)]:
            batch.append(self.pending.pop(sku))
        return batch

    async def _push(self, batch: list[PushItem]) -> list[PushResult]:
        try:
            results = await self.pusher.push(batch)
        except Exception as exc:  # a bug or network failure must not kill the lane
            error = redact.describe(exc)
            return [PushResult(item, Outcome.RETRY, error=error) for item in batch]
        answered = {r.item.sku for r in results}
        missing = [
            PushResult(item, Outcome.RETRY, error="no result from pusher")
            for item in batch
            if item.sku not in answered
        ]
        return [*results, *missing]

    async def _settle(self, results: list[PushResult], now: float) -> None:
        answered = False
        for result in results:
            item = result.item
            if result.outcome is Outcome.OK:
                answered = True
                self._mark_clean(item.sku)
                self.acked[item.sku] = item
                self.recent.setdefault(item.sku, deque(maxlen=4)).append(item.quantity)
                metrics.PUSHES.labels(self.channel, "ok").inc()
                metrics.SYNC_LAG.labels(self.channel).observe(
                    max(0.0, (now_ms() - item.occurred_at) / 1000)
                )
            elif result.outcome is Outcome.FAILED and result.permanent:
                metrics.PUSHES.labels(self.channel, "dead_lettered").inc()
                self._mark_clean(item.sku)  # nothing to probe: this version cannot pass
                await self._dead_letter(item, result.error)
            elif result.outcome is Outcome.REFUSED:
                metrics.PUSHES.labels(self.channel, "refused").inc()
                metrics.DRIFT.labels(self.channel, "refused").inc()
                await self._refused(item, result.error)
            elif result.outcome is Outcome.FAILED or (
                # A throttle (the channel said when to come back) is not a failed attempt: a
                # 30 s 429 storm must delay the newest quantity, never dead-letter it.
                result.retry_after is None and item.attempt + 1 >= self.policy.max_attempts
            ):
                transient = result.outcome is not Outcome.FAILED
                known = self.dirty.get(item.sku)
                if known is not None and known.version == item.version:
                    # a heal attempt failed: the SKU stays dirty, its record already exists
                    metrics.PUSHES.labels(self.channel, "still_dirty").inc()
                    self._mark_dirty(item, transient=transient)
                    continue
                metrics.PUSHES.labels(self.channel, "dead_lettered").inc()
                self._mark_dirty(item, transient=transient)
                await self._dead_letter(item, result.error)
            elif item.sku in self.pending:
                metrics.PUSHES.labels(self.channel, "superseded").inc()
            else:
                metrics.PUSHES.labels(self.channel, "retry").inc()
                metrics.RETRIES.labels(self.channel).inc()
                attempt = item.attempt + (1 if result.retry_after is None else 0)
                self.pending[item.sku] = replace(item, attempt=attempt)
                delay = result.retry_after
                if delay is None:
                    delay = backoff_delay(
                        item.attempt,
                        base=self.policy.backoff_base_s,
                        cap=self.policy.backoff_cap_s,
                        rng=self._rng,
                    )
                self._not_before = max(self._not_before, now + delay)
        if answered and self._transient:
            self.heal(transient_only=True)  # the channel answers again: push what it missed


def items_from_level(
    level: Mapping[str, Any], channels: Iterable[str], *, by_location: Collection[str] = ()
) -> list[PushItem]:
    """One push item per served channel named in the level's ``changed_channels`` (all served
    channels when the list is empty, from writers older than the per-location split; none
    when only that split changed); a channel missing from ``channels`` gets
    ``default_quantity``.

    A channel in ``by_location`` (its pusher writes per location, see
    :attr:`OutboundEngine.by_location`) gets the level's ``locations`` on its item, and an
    item for every level that carries them: a new split (a transfer, a count elsewhere)
    changes what it writes even when its figure stays."""
    changed = set(level.get("changed_channels") or ())
    units: Mapping[str, int] = level.get("locations") or {}
    split = tuple(sorted((str(k), max(0, int(v))) for k, v in units.items())) or None
    quantities: Mapping[str, int] = level.get("channels") or {}
    preorders: Mapping[str, int] = level.get("preorders") or {}
    items = []
    for channel in channels:
        per_location = channel in by_location
        if not (per_location and split):
            if not changed and units:
                continue  # a transfer: this channel's quantity stays
            if changed and channel not in changed:
                continue
        quantity = quantities.get(channel, level.get("default_quantity", 0))
        items.append(
            PushItem(
                channel=channel,
                sku=level["sku"],
                quantity=max(0, int(quantity)),
                version=int(level["version"]),
                occurred_at=int(level["occurred_at"]),
                preorder=int(preorders[channel]) if channel in preorders else None,
                locations=split if per_location else None,
            )
        )
    return items


class OutboundEngine:
    """Consumes level dicts, pushes them through each channel's pusher.

    Use as ``async with OutboundEngine(pushers) as engine: await engine.consume(levels)``.
    """

    def __init__(
        self,
        pushers: Iterable[ChannelPusher],
        *,
        policies: Mapping[str, LanePolicy] | None = None,
        dead_letter: DeadLetterSink = _no_sink,
        refused: RefusalSink = _no_sink,
        seed: int | None = None,
        store: LaneStore | None = None,
    ) -> None:
        rng = random.Random(seed)
        policies = policies or {}
        pushers = list(pushers)
        # channels whose pusher says ``by_location = True``: their items carry the level's
        # available units per location (a pusher without the attribute gets none)
        self.by_location = frozenset(
            p.channel for p in pushers if getattr(p, "by_location", False) is True
        )
        self.lanes: dict[str, Lane] = {
            p.channel: Lane(
                p,
                policies.get(p.channel, LanePolicy()),
                dead_letter=dead_letter,
                refused=refused,
                rng=rng,
                store=store,
            )
            for p in pushers
        }
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> OutboundEngine:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(lane.run(), name=f"lane-{name}")
            for name, lane in self.lanes.items()
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def offer(self, level: Mapping[str, Any]) -> int:
        """Queue a level; returns how many channel pushes it queued (newer than known)."""
        return sum(self.lanes[item.channel].offer(item) for item in self.items(level))

    def items(self, level: Mapping[str, Any]) -> list[PushItem]:
        """The push items ``level`` asks of this engine's channels."""
        return items_from_level(level, self.lanes, by_location=self.by_location)

    async def consume(self, levels: AsyncIterable[Mapping[str, Any]]) -> None:
        async for level in levels:
            self.offer(level)

    def force(self, channel: str, sku: str) -> bool:
        return self.lanes[channel].force(sku)

    def latest(self, channel: str) -> dict[str, PushItem]:
        return dict(self.lanes[channel].latest)

    async def drained(self, within_s: float = 10.0) -> None:
        """Wait until every lane has pushed (or given up on) everything offered."""
        async with asyncio.timeout(within_s):
            while not all(lane.idle for lane in self.lanes.values()):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            for task in self._tasks:
                if task.done():
                    task.result()
