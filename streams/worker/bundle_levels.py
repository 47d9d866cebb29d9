"""Bundle levels: each bundle's sellable quantity per channel, written on
``stock.levels.v1`` under the bundle's SKU whenever one of its components' levels changes.

Why here, in the worker, and not in the connectors: the connectors then push a bundle like
any SKU (they never learn it is one), every consumer of ``stock.levels.v1`` (the sink and
ClickHouse, the reports, the order book's routing view) sees the bundle's figure, and the
ledger process stays the one writer of the topic (``Writer.LEDGER``). The ledger's agent
never writes those keys: a bundle SKU is never stocked (its StockEvents are expanded into
component events before they reach the ledger, :mod:`streams.bundles.expand`).

How: a thread follows every partition of ``stock.levels.v1`` from its start (like the
order book's levels view), decodes the records of component SKUs only, and once it has read
up to the ends Kafka had at the start writes each bundle's level, then one after each
component level that changes a bundle's figures. The record is a pure function of the
component versions read (:func:`streams.bundles.derive.bundle_level`): every worker of the
group writes the same records, at worst a little behind one another, and the connectors
drop a version they already pushed. Sync bound: one component level's trip from the ledger
back to this thread (reads wait at most 10 ms for more records) plus one write, then the
connectors' push.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Producer

from schemas.codec import Codec
from streams.bundles.catalogue import Catalogue
from streams.bundles.derive import bundle_level
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_LEVELS
from streams.worker.order_views import WholeTopicView

log = logging.getLogger("stockflow.bundles")


class BundleLevels(WholeTopicView):
    """Follows the components' levels and writes the bundles' (see the module's doc)."""

    wait_s = 0.01  # the sync bound: read what arrived, don't wait for a batch to fill

    def __init__(self, settings: Settings, codec: Codec, catalogue: Catalogue) -> None:
        super().__init__(settings, codec, STOCK_LEVELS, "bundle-levels")
        self.catalogue = catalogue
        self._keys = {sku.encode() for sku in catalogue.components()}
        self.levels: dict[str, dict[str, Any]] = {}  # component SKU -> its newest level
        self.written: dict[str, tuple[int, Any]] = {}  # bundle SKU -> (version, figures)
        self._producer: Producer | None = None
        self.sent = 0

    def take(self, key: bytes | None, value: bytes) -> None:
        if key is not None and key not in self._keys:
            return  # not a component: not even decoded
        super().take(key, value)

    def apply(self, record: Mapping[str, Any]) -> None:
        sku = record["sku"]
        old = self.levels.get(sku)
        if old is not None and int(record["version"]) <= int(old["version"]):
            return
        self.levels[sku] = dict(record)
        if self.ready.is_set():
            self._write([b.sku for b in self.catalogue.using(sku)])

    def on_ready(self) -> None:
        self._write(list(self.catalogue.bundles))
        log.info(
            "bundle levels: %d components read, %d bundle levels written",
            len(self.levels),
            self.sent,
        )

    def _write(self, bundles: list[str]) -> None:
        """Each bundle's level, when its figures or its version moved since it was written."""
        if self._producer is None:
            self._producer = Producer(producer_config(self.settings))
        for sku in bundles:
            bundle = self.catalogue.get(sku)
            if bundle is None:
                continue
            level = bundle_level(bundle, self.levels)
            if level is None:
                continue
            figures = (level["channels"], level["default_quantity"])
            before = self.written.get(sku)
            if before is not None and (before[0] >= level["version"] or before[1] == figures):
                continue
            value = self.codec.encode(STOCK_LEVELS.value_schema, level)
            produce(
                self._producer,
                STOCK_LEVELS.name,
                sku.encode(),
                value,
                on_delivery=self._on_delivery(sku),
            )
            self.written[sku] = (int(level["version"]), figures)
            self.sent += 1
        self._producer.poll(0)

    def _on_delivery(self, sku: str) -> Callable[[Any, Any], None]:
        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:  # written again at the component's next change, or a restart
                self.written.pop(sku, None)
                log.warning("%s key=%s not written: %s", STOCK_LEVELS.name, sku, err)

        return delivered

    def stop(self) -> None:
        super().stop()
        if self._producer is not None:
            self._producer.flush(5)
