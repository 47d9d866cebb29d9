"""The wave service: plans waves per location, applies pick confirmations, keeps documents.

State at start: fulfilment.waves.v1 and orders.state.v1 are read whole (compacted; the
last version of each wave and order wins). Before each plan and each confirmation both are
read to their current end, so a wave is never planned twice for the same line and a short
pick's re-routed remainder is waved where it was reserved again.

Order of writes for a confirmation (one at a time, under a lock):

1. the short picks' ``adjustment`` StockEvents, acknowledged before anything else, so that on
   the SKU's partition they come before the order book's release and new reservation;
2. the ``rerouted`` Order events, the new Wave version, the ``short_pick`` Alerts.

Nothing is kept in memory until Kafka acknowledged it: a confirmation that failed (503) and
is sent again computes the same records with the same ids, which count once downstream.

A record that cannot be decoded is dead-lettered (stock.deadletter.v1, component
``fulfilment``) and skipped; the service goes on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.codec import Codec, CodecError, codec_for
from schemas.times import now_ms
from streams.fulfilment.config import FulfilmentConfig, FulfilmentConfigError, reload_bins
from streams.fulfilment.documents import delivery_note_pdf, pick_list_pdf, wave_summary_pdf
from streams.fulfilment.model import Wave, WaveStatus
from streams.fulfilment.picking import PickError, confirm
from streams.fulfilment.planner import WAVEABLE, finished, plan_waves, waved_lines
from streams.fulfilment.records import wave_from_record, wave_record
from streams.kernel.deadletter import dead_letter
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_io import Publisher
from streams.kernel.metrics import dead_letter_counter
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    FULFILMENT_WAVES,
    ORDERS,
    ORDERS_STATE,
    STOCK_ALERTS,
    STOCK_DEADLETTER,
    STOCK_EVENTS,
    STOCKFLOW_AUDIT,
    TopicSpec,
)
from streams.picking.kafka_io import Raw, Reader

log = logging.getLogger("stockflow.waves")

COMPONENT = "fulfilment"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

Record = tuple[TopicSpec, str, dict[str, Any]]


def safe_name(text: str) -> str:
    """A file name for an id (order ids hold ':')."""
    return _SAFE.sub("_", text)[:120] or "_"


class WaveService:
    def __init__(
        self,
        settings: Settings,
        config: FulfilmentConfig,
        *,
        codec: Codec | None = None,
        documents: Path | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.codec = codec if codec is not None else codec_for(settings)
        self.documents = documents or settings.state_dir / "fulfilment"
        self.waves: dict[str, Wave] = {}
        self.states: dict[str, dict[str, Any]] = {}
        self.dead = dead_letter_counter(CollectorRegistry())
        self._lock = asyncio.Lock()
        self._publisher: Publisher | None = None
        self._readers: dict[str, Reader] = {}

    async def start(self) -> None:
        specs = (FULFILMENT_WAVES, ORDERS_STATE, ORDERS, STOCK_EVENTS, STOCK_ALERTS)
        more = (STOCK_DEADLETTER, STOCKFLOW_AUDIT)
        await asyncio.to_thread(ensure_topics, self.settings, (*specs, *more))
        self._publisher = Publisher(
            self.settings, self.codec, retry_hint="nothing was changed, send the confirmation again"
        )
        self._readers = {s.name: Reader(self.settings, s) for s in (FULFILMENT_WAVES, ORDERS_STATE)}
        await self.refresh()

    async def stop(self) -> None:
        if self._publisher is not None:
            await asyncio.to_thread(self._publisher.close)
        for reader in self._readers.values():
            await asyncio.to_thread(reader.close)

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            raise RuntimeError("the wave service is not started")
        return self._publisher

    # -- reading -------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read both topics to their current end."""
        bad: list[Record] = []
        for raw in await self._readers[FULFILMENT_WAVES.name].read():
            found = self._decode(FULFILMENT_WAVES, raw, bad)
            if found is not None:
                wave = wave_from_record(found)
                old = self.waves.get(wave.wave_id)
                if old is None or wave.version >= old.version:
                    self.waves[wave.wave_id] = wave
        for raw in await self._readers[ORDERS_STATE.name].read():
            found = self._decode(ORDERS_STATE, raw, bad)
            if found is not None:
                old_state = self.states.get(found["order_id"])
                if old_state is None or found["version"] >= old_state["version"]:
                    self.states[found["order_id"]] = found
        await self.publisher.send(bad)

    def _decode(self, spec: TopicSpec, raw: Raw, bad: list[Record]) -> dict[str, Any] | None:
        if raw.value is None:  # a tombstone
            return None
        try:
            record = self.codec.decode_as(spec.value_schema, raw.value)
            if spec is FULFILMENT_WAVES:
                wave_from_record(record)  # every field it needs is there
            return record
        except (CodecError, KeyError, TypeError, ValueError) as exc:
            letter = dead_letter(
                self.dead,
                component=COMPONENT,
                reason="undecodable",
                error=f"{type(exc).__name__}: {exc}",
                original=raw.value,
                topic=spec.name,
                partition=raw.partition,
                offset=raw.offset,
                key=raw.key,
            )
            bad.append((STOCK_DEADLETTER, spec.name, letter))
            return None

    def locations(self) -> list[str]:
        """Locations with orders to wave (reserved lines of allocated or released orders)."""
        found = {
            line["location"]
            for state in self.states.values()
            if state.get("status") in WAVEABLE
            for line in state.get("lines") or []
            if line.get("location") and line.get("status") == "reserved"
        }
        return sorted(found)

    def listed(self, location: str | None = None) -> list[Wave]:
        waves = [w for w in self.waves.values() if location is None or w.location == location]
        return sorted(waves, key=lambda w: (w.location, w.created_at_ms, w.priority, w.wave_id))

    # -- planning ------------------------------------------------------------------------

    async def plan(self, location: str | None = None) -> list[Wave]:
        """New waves at ``location`` (every location with orders to wave when None), sent
        and their documents written; waves whose every order left are closed."""
        async with self._lock:
            await self.refresh()
            try:
                self.config = reload_bins(self.config)
            except FulfilmentConfigError as exc:
                log.warning("waves: %s; the bins read before are kept", exc)
            now = now_ms()
            waved = waved_lines(self.waves.values())
            made: list[Wave] = []
            for loc in [location] if location is not None else self.locations():
                made += plan_waves(self.states.values(), loc, waved, self.config, now)
            done = finished(self.waves.values(), self.states)
            closed = [w.with_status(WaveStatus.CLOSED, now) for w in done]
            await self.publisher.send(
                [(FULFILMENT_WAVES, w.wave_id, wave_record(w)) for w in (*made, *closed)]
            )
            for wave in (*made, *closed):
                self.waves[wave.wave_id] = wave
        for wave in made:
            await asyncio.to_thread(self.write_documents, wave)
        return made

    # -- picking -------------------------------------------------------------------------

    async def pick(
        self, wave_id: str, picks: Sequence[tuple[str, str, Any]], by: str | None
    ) -> tuple[Wave, int]:
        """Apply ``(order id, line id, picked)`` confirmations in order; returns the wave
        and the number of short lines. KeyError: no such wave; PickError: one confirmation
        cannot apply (none of the request's is then applied)."""
        async with self._lock:
            wave = self.waves.get(wave_id)
            if wave is None:
                await self.refresh()
                wave = self.waves.get(wave_id)
            if wave is None:
                raise KeyError(wave_id)
            now = now_ms()
            stock: list[Record] = []
            rest: list[Record] = []
            changed, shorts = False, 0
            for order_id, line_id, picked in picks:
                out = confirm(wave, order_id, line_id, picked, now, by)
                if out.duplicate:
                    continue
                wave, changed = out.wave, True
                shorts += len(out.stock_events)
                stock += [(STOCK_EVENTS, e["sku"], e) for e in out.stock_events]
                rest += [(ORDERS, e["order_id"], e) for e in out.order_events]
                rest += [(STOCK_ALERTS, a["sku"], a) for a in out.alerts]
            if not changed:
                return wave, 0
            await self.publisher.send(stock)
            await self.publisher.send([*rest, (FULFILMENT_WAVES, wave.wave_id, wave_record(wave))])
            self.waves[wave.wave_id] = wave
            log.info("waves: %s %s by %s (%d short)", wave.wave_id, wave.status, by, shorts)
        await asyncio.to_thread(self.write_documents, wave)
        return wave, shorts

    # -- documents -----------------------------------------------------------------------

    def folder(self, wave: Wave) -> Path:
        return self.documents / safe_name(wave.location) / safe_name(wave.wave_id)

    def write_documents(self, wave: Wave) -> Path:
        """pick-list.pdf, summary.pdf and delivery-notes/<order>.pdf of the wave."""
        folder = self.folder(wave)
        notes = folder / "delivery-notes"
        notes.mkdir(parents=True, exist_ok=True)
        (folder / "pick-list.pdf").write_bytes(pick_list_pdf(wave))
        (folder / "summary.pdf").write_bytes(wave_summary_pdf(wave))
        for order in wave.orders:
            (notes / f"{safe_name(order.order_id)}.pdf").write_bytes(delivery_note_pdf(wave, order))
        return folder


__all__ = ["PickError", "WaveService", "safe_name"]
