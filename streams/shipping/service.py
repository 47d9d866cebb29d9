"""The shipping service: from picked to delivered.

It follows ``fulfilment.waves.v1`` (read whole at start, then followed; the latest version
of each wave kept). Each order of a wave whose every line is confirmed is shipped once:

1. packed into parcels (sizes per SKU of ``carriers.parcels``), rates asked of every carrier
   and the label bought from the best one for the channel's service level, falling back to
   the next carrier when one cannot sell it (:mod:`connectors.carriers.shopping`); the shipment id
   is the reference given to the carrier;
2. the label file stored under ``$STOCKFLOW_STATE_DIR/labels/`` (served by URL, see
   :mod:`streams.shipping.web`);
3. the Shipment (version 1, ``created``) and the order's ``shipped`` event on ``orders.v1``
   published together, Kafka's acknowledgement awaited; then version 2 ``shipped``.

At start the shipments topic is read to its end: an order with a shipment is not shipped
again; a shipment left at ``created`` (a stop between steps 3's two writes) gets its
``shipped`` event again (same id: the order book drops a repeat) and its ``shipped``
version. A stop between buying the label and step 3 buys a second label at restart with
the same reference (what a carrier can dedupe on); the first is never used.

Tracking: every ``track_every_seconds`` the open shipments are asked of their carrier
(one call per carrier with every tracking number); ``in_transit`` and ``delivered`` move the
shipment (delivered also sends the order's ``delivered`` event), ``exception`` moves it and
raises one ``delivery_exception`` alert.

An order that cannot be shipped (no address for its location, its channel not telling the
destination now, no carrier selling a label) is dead-lettered once per process (component
``shipping``, the original is the wave id and order id) and tried again at each tracking
tick, when the carriers (or the channel) may be back.

Pickups (with ``shipping.pickups``, rules in :mod:`streams.shipping.pickups`): after each
round, at a location's cut-off, one pickup per carrier with labels for that day is booked
(``Carrier.pickup``), kept in :class:`streams.shipping.pickup_book.PickupBook` so it is never
booked twice, also across restarts; a failure is tried again at the next round and, still
failing ``alert_after_minutes`` after the cut-off, raises one ``pickup_failed`` alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prometheus_client import CollectorRegistry

from connectors.carriers.base import Carrier, CarrierError
from connectors.carriers.destinations import AddressUnavailableError
from connectors.carriers.model import Address
from connectors.carriers.shopping import buy, parcels_for, shop
from schemas.codec import Codec, codec_for
from schemas.times import now_ms
from streams.fulfilment.documents import delivery_note_pdf
from streams.fulfilment.model import Wave, WaveOrder
from streams.fulfilment.records import wave_from_record
from streams.kernel.deadletter import dead_letter
from streams.kernel.kafka_io import Publisher, TopicReader
from streams.kernel.metrics import dead_letter_counter
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    FULFILMENT_SHIPMENTS,
    FULFILMENT_WAVES,
    ORDERS,
    STOCK_ALERTS,
    STOCK_DEADLETTER,
    TopicSpec,
)
from streams.shipping import pickups, records
from streams.shipping.config import ShippingConfig, ShippingConfigError
from streams.shipping.pickup_book import PickupBook, PickupBookError

log = logging.getLogger("stockflow.shipping")

COMPONENT = "shipping"

AddressBook = Callable[[WaveOrder], Awaitable[Address | None]]
"""The full destination of an order, asked of its channel at label time (never stored)."""
SHIPPABLE_WAVES = ("picking", "picked", "closed")


class ShippingService:
    def __init__(
        self,
        settings: Settings,
        config: ShippingConfig,
        carriers: Mapping[str, Carrier],
        *,
        codec: Codec | None = None,
        label_base_url: str | None = None,
        registry: CollectorRegistry | None = None,
        addresses: AddressBook | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        self.config = config
        self.carriers = dict(carriers)
        self.codec = codec if codec is not None else codec_for(settings)
        self.labels_dir = Path(settings.state_dir) / "labels"
        self.label_base_url = label_base_url
        self.addresses = addresses
        self.shipments: dict[str, dict[str, Any]] = {}
        self.waves: dict[str, Wave] = {}
        self.failed: set[str] = set()  # shipment ids dead-lettered (retried at tracking ticks)
        self.last_error = ""
        self.counts = {"shipped": 0, "fallbacks": 0, "failed": 0, "delivered": 0, "exceptions": 0}
        self.counts |= {"pickups": 0, "pickup_failures": 0}
        self.clock = clock  # epoch ms; the pickups' cut-offs are read against it
        self.pickup_book: PickupBook | None = None
        self._pickup_alerted: set[str] = set()  # pickup keys alerted by this process
        self._dead = dead_letter_counter(registry or CollectorRegistry())
        self._lock = asyncio.Lock()  # tracking updates, one at a time
        self._busy: set[str] = set()  # shipment ids under way
        self._lettered: set[str] = set()  # shipment ids dead-lettered by this process
        self.concurrency = 8  # orders shipped at once (each one's steps stay in order)
        self._publisher: Publisher | None = None
        self._waves_reader: TopicReader | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._publisher = Publisher(self.settings, self.codec)
        reader = TopicReader(self.settings, FULFILMENT_SHIPMENTS, self.codec)
        try:
            for record in await reader.catch_up():
                self._keep(record)
        finally:
            await reader.close()
        self._waves_reader = TopicReader(self.settings, FULFILMENT_WAVES, self.codec)
        for record in await self._waves_reader.catch_up():
            self._keep_wave(record)
        for shipment in list(self.shipments.values()):
            if shipment["status"] == "created":  # stopped between the two writes: finish
                await self._finish(shipment, resend=True)
        if self.config.pickups.cutoffs:
            await self._open_pickup_book()
        log.info(
            "shipping: started with %d shipment(s), %d wave(s), carriers %s",
            len(self.shipments),
            len(self.waves),
            ", ".join(sorted(self.carriers)) or "none",
        )

    async def stop(self) -> None:
        if self._waves_reader is not None:
            await self._waves_reader.close()
        if self._publisher is not None:
            await asyncio.to_thread(self._publisher.close)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the waves and ship, track on schedule, until ``stop`` is set."""
        next_track = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await self.follow()
                await self.book_pickups()
                if loop.time() >= next_track:
                    self.failed.clear()
                    await self.track()
                    next_track = loop.time() + self.config.track_every_seconds
            except Exception as exc:  # a Kafka hiccup: logged, the next round tries again
                log.warning(
                    "shipping: round failed (%s: %s); trying again", type(exc).__name__, exc
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.poll_every_seconds)

    # -- waves to shipments ------------------------------------------------------------------

    def _keep(self, record: Mapping[str, Any]) -> None:
        known = self.shipments.get(record["shipment_id"])
        if known is None or int(record["version"]) > int(known["version"]):
            self.shipments[record["shipment_id"]] = dict(record)

    def _keep_wave(self, record: Mapping[str, Any]) -> None:
        try:
            wave = wave_from_record(record)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("shipping: unreadable wave skipped (%s)", exc)
            return
        known = self.waves.get(wave.wave_id)
        if known is None or wave.version > known.version:
            self.waves[wave.wave_id] = wave

    def ready(self) -> list[tuple[Wave, WaveOrder]]:
        """Orders picked and not shipped yet (nor failed since the last tracking tick)."""
        out = []
        for wave in self.waves.values():
            if wave.status.value not in SHIPPABLE_WAVES:
                continue
            for order in wave.picked_orders():
                sid = records.shipment_id(wave.wave_id, order.order_id)
                if sid in self.shipments or sid in self.failed:
                    continue
                if not records.shipped_lines(order):
                    continue  # nothing was found: the whole order went back to routing
                out.append((wave, order))
        return out

    async def follow(self) -> int:
        """Read the waves written since the last call and ship what is ready; the count."""
        assert self._waves_reader is not None, "start() first"
        for record in await self._waves_reader.poll():
            self._keep_wave(record)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(wave: Wave, order: WaveOrder) -> int:
            async with gate:
                return await self.ship(wave, order)

        results = await asyncio.gather(
            *(one(w, o) for w, o in self.ready()), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:  # each shipment is whole or not at all: the next round tries again
            raise failures[0]
        return sum(r for r in results if isinstance(r, int))

    async def ship(self, wave: Wave, order: WaveOrder) -> int:
        """Ship ``order`` of ``wave`` (see the module docstring); 1 when shipped, else 0."""
        sid = records.shipment_id(wave.wave_id, order.order_id)
        if sid in self.shipments or sid in self._busy:
            return 0
        self._busy.add(sid)
        try:
            lines = records.shipped_lines(order)
            units: Counter[str] = Counter()
            for ln in lines:
                units[ln["sku"]] += ln["qty"]
            carriers = self.config.carriers
            try:
                parcels = parcels_for(
                    units, carriers.parcels, carriers.default_parcel, carriers.max_parcel_weight_g
                )
                origin = self.config.origin(wave.location)
                ship_to = await self._destination(order)
                quote = await shop(
                    list(self.carriers.values()),
                    origin,
                    ship_to,
                    parcels,
                    carriers.level_for(order.channel),
                    timeout_s=carriers.quote_timeout_s,
                    currency=carriers.currency,
                )
                bought = await buy(
                    list(self.carriers.values()), quote, origin, ship_to, parcels, sid
                )
            except (ShippingConfigError, CarrierError, AddressUnavailableError, KeyError) as exc:
                await self._fail(sid, wave, order, type(exc).__name__, str(exc))
                return 0
            passed_over = {**quote.skipped, **bought.failed}
            if passed_over:  # a carrier gave no rate or no label: the next one sold it
                self.counts["fallbacks"] += 1
            now = now_ms()
            url = self._store_label(sid, bought.label.format, bought.label.data)
            note = await asyncio.to_thread(
                _render_note, wave, order, bought.label.tracking_number, bought.label.carrier
            )
            self._store_file(self.note_path(sid), note)
            shipment = records.new_shipment(
                wave,
                order,
                bought.label,
                parcels=len(parcels),
                weight_g=sum(p.weight_g for p in parcels),
                label_url=url,
                now=now,
                passed_over=passed_over,
            )
            await self._send(
                [
                    (FULFILMENT_SHIPMENTS, sid, shipment),
                    (ORDERS, order.order_id, records.shipped_event(shipment, now)),
                ]
            )
            self._keep(shipment)
            await self._finish(shipment)
            self.counts["shipped"] += 1
            log.info(
                "shipping: %s shipped by %s %s (%d parcel(s), %d %s)%s",
                order.order_id,
                bought.label.carrier,
                bought.label.tracking_number,
                len(parcels),
                bought.label.cost_minor,
                bought.label.currency,
                f"; passed over {passed_over}" if passed_over else "",
            )
            return 1
        finally:
            self._busy.discard(sid)

    async def _finish(self, shipment: Mapping[str, Any], *, resend: bool = False) -> None:
        """The ``shipped`` version of a ``created`` shipment; with ``resend`` (a restart found
        it at ``created``) the order's ``shipped`` event first, again (same id)."""
        now = now_ms()
        after = records.moved(shipment, "shipped", now)
        out: list[tuple[TopicSpec, str, dict[str, Any]]] = [
            (FULFILMENT_SHIPMENTS, shipment["shipment_id"], after)
        ]
        if resend:
            out.insert(0, (ORDERS, shipment["order_id"], records.shipped_event(shipment, now)))
        await self._send(out)
        self._keep(after)

    async def _fail(self, sid: str, wave: Wave, order: WaveOrder, reason: str, error: str) -> None:
        self.failed.add(sid)
        self.counts["failed"] += 1
        self.last_error = f"{sid}: {reason}: {error}"[:500]
        if sid in self._lettered:  # tried again at a tracking tick: one dead letter is enough
            log.warning("shipping: %s still cannot ship: %s: %s", sid, reason, error[:300])
            return
        self._lettered.add(sid)
        original = json.dumps({"wave_id": wave.wave_id, "order_id": order.order_id}).encode()
        record = dead_letter(
            self._dead,
            component=COMPONENT,
            reason="ship_failed",
            error=f"{reason}: {error}",
            original=original,
            topic=FULFILMENT_WAVES.name,
            key=wave.wave_id.encode(),
            event_id=sid,
        )
        with contextlib.suppress(Exception):  # the dead letter is best effort: logged above
            await self._send([(STOCK_DEADLETTER, order.order_id, record)])

    async def _destination(self, order: WaveOrder) -> Address:
        """Where the parcel goes: from the address book (the channel keeps the street and
        the name; they go to the carrier and nowhere else), else country and postal code."""
        if self.addresses is not None:
            found = await self.addresses(order)
            if found is not None:
                return found
        return destination(order)

    # -- pickups -----------------------------------------------------------------------------

    async def book_pickups(self) -> int:
        """Book the pickups due now (see :mod:`streams.shipping.pickups`); the count booked."""
        config = self.config.pickups
        if not config.cutoffs or self.pickup_book is None:  # none configured, or the file bad
            return 0
        now = self.clock()
        labelled = (s for s in self.shipments.values() if s["carrier"] in self.carriers)
        booked = 0
        for item in pickups.due(labelled, now, config, self.pickup_book.ids()):
            key = item.key
            if key.id in self.pickup_book:  # booked by a round that ran meanwhile
                continue
            try:
                origin = self.config.origin(key.location)
            except ShippingConfigError as exc:
                await self._pickup_failed(key, item.parcels, str(exc), now)
                continue
            self.pickup_book.begin(key, item.parcels, now)
            try:
                number = await self.carriers[key.carrier].pickup(origin, key.day, item.parcels)
            except (CarrierError, TimeoutError) as exc:
                self.pickup_book.failed(key)
                await self._pickup_failed(key, item.parcels, f"{type(exc).__name__}: {exc}", now)
                continue
            self.pickup_book.booked(key, number, self.clock())
            self.counts["pickups"] += 1
            booked += 1
            log.info(
                "shipping: %s pickup booked at %s on %s for %d parcel(s): %s",
                key.carrier,
                key.location,
                key.day.isoformat(),
                item.parcels,
                number,
            )
        return booked

    async def _open_pickup_book(self) -> None:
        """The pickups booked so far; an unreadable file leaves pickups off (shipping goes on)
        until a person checks the day's bookings with the carriers and moves it aside."""
        try:
            self.pickup_book = PickupBook(
                Path(self.settings.state_dir) / "shipping" / "pickups.json"
            )
        except (PickupBookError, OSError) as exc:
            self.last_error = f"pickups off: {exc}"[:500]
            log.error("shipping: pickups off: %s", exc)
            return
        for key, parcels in self.pickup_book.unsure():  # stopped during the carrier's call
            await self._pickup_alert(
                key, parcels, "a stop came during the booking; the carrier may hold it"
            )

    async def _pickup_failed(
        self, key: pickups.PickupKey, parcels: int, error: str, now: int
    ) -> None:
        self.counts["pickup_failures"] += 1
        log.warning(
            "shipping: %s pickup at %s on %s not booked (%s); next round",
            key.carrier,
            key.location,
            key.day.isoformat(),
            error[:300],
        )
        if pickups.overdue(key, now, self.config.pickups):
            await self._pickup_alert(key, parcels, error)

    async def _pickup_alert(self, key: pickups.PickupKey, parcels: int, error: str) -> None:
        if key.id in self._pickup_alerted:
            return
        alert = pickups.failed_alert(key, parcels, error, self.clock())
        await self._send([(STOCK_ALERTS, alert["sku"], alert)])
        self._pickup_alerted.add(key.id)

    # -- labels --------------------------------------------------------------------------------

    def label_path(self, shipment_id: str, fmt: str) -> Path:
        digest = hashlib.sha256(shipment_id.encode()).hexdigest()[:32]
        return self.labels_dir / f"{digest}.{'zpl' if fmt.upper() == 'ZPL' else 'pdf'}"

    def note_path(self, shipment_id: str) -> Path:
        """The delivery note of the parcel, with its tracking number and barcode."""
        return self.label_path(shipment_id, "PDF").with_suffix(".note.pdf")

    @staticmethod
    def _store_file(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def _store_label(self, shipment_id: str, fmt: str, data: bytes) -> str | None:
        self._store_file(self.label_path(shipment_id, fmt), data)
        if self.label_base_url is None:
            return None
        return f"{self.label_base_url.rstrip('/')}/v1/labels/{quote(shipment_id, safe='')}"

    # -- tracking ------------------------------------------------------------------------------

    async def track(self) -> int:
        """Ask each carrier about its open shipments; the number of shipments that moved."""
        by_carrier: dict[str, dict[str, dict[str, Any]]] = {}
        for s in self.shipments.values():
            if s["status"] in records.TRACKED and s["carrier"] in self.carriers:
                by_carrier.setdefault(s["carrier"], {})[s["tracking_number"]] = s
        moved = 0
        for name, open_ in sorted(by_carrier.items()):
            try:
                statuses = await self.carriers[name].track(sorted(open_))
            except (CarrierError, TimeoutError) as exc:
                log.warning("shipping: %s tracking failed (%s); next tick", name, exc)
                continue
            for status in statuses:
                shipment = open_.get(status.tracking_number)
                if shipment is not None:
                    moved += await self._tracked(shipment, status.status, status.detail)
        return moved

    async def _tracked(self, shipment: Mapping[str, Any], status: str, detail: str) -> int:
        if status not in ("in_transit", "delivered", "exception") or status == shipment["status"]:
            return 0
        async with self._lock:
            now = now_ms()
            after = records.moved(shipment, status, now, detail[:300] or None)
            out: list[tuple[TopicSpec, str, dict[str, Any]]] = [
                (FULFILMENT_SHIPMENTS, shipment["shipment_id"], after)
            ]
            if status == "delivered":
                out.insert(
                    0, (ORDERS, shipment["order_id"], records.delivered_event(shipment, now))
                )
                self.counts["delivered"] += 1
            elif status == "exception":
                alert = records.exception_alert(shipment, detail, now)
                out.insert(0, (STOCK_ALERTS, alert["sku"], alert))
                self.counts["exceptions"] += 1
            await self._send(out)
            self._keep(after)
            log.info(
                "shipping: %s %s -> %s", shipment["order_id"], shipment["tracking_number"], status
            )
            return 1

    async def _send(self, batch: list[tuple[TopicSpec, str, dict[str, Any]]]) -> None:
        assert self._publisher is not None, "start() first"
        await self._publisher.send(batch)


_REPORTLAB = threading.Lock()  # reportlab keeps global state: one document at a time


def _render_note(wave: Wave, order: WaveOrder, tracking_number: str, carrier: str) -> bytes:
    with _REPORTLAB:
        return delivery_note_pdf(wave, order, tracking_number=tracking_number, carrier=carrier)


def destination(order: WaveOrder) -> Address:
    """The carrier's destination of ``order``: country and postal code (the rest of the
    address stays on the channel; carriers rate and label on these)."""
    return Address(order.country or "", order.postal_code or "")
