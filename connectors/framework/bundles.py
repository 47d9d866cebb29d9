"""Bundles at the connectors' line intake (``orders: lines``).

A channel sells a bundle SKU like any other; the ledger never stocks one. Before the intake
publishes a StockEvent of a bundle SKU it becomes one event per component
(:func:`streams.bundles.expand.expand_event`: ``order_placed`` reserves each component,
``order_cancelled`` / ``order_shipped`` / ``return_received`` act on each, the bundle kept
as ``source_ref``). An event a bundle cannot have (a receipt, a count, an adjustment) is
dead-lettered (component ``connector:<channel>``, reason ``bundle_not_stocked``) and the
delivery's other events go on.

In this mode the ledger reserves line by line, so a bundle's components are reserved one by
one like the lines of any order on that path: one can be accepted and another refused, and
the channel's ``on_refusal`` policy acts on the refused one (``cancel`` cancels the order,
which releases the others). Channels in ``orders: book`` mode get all-or-nothing across the
components: the order book expands the bundle's line and reserves its components as one
order.
"""

from __future__ import annotations

import orjson

from connectors.framework import metrics
from connectors.framework.kafka import KafkaPublisher
from connectors.framework.types import StockEventDict
from schemas.codec import Codec
from streams.bundles.catalogue import Catalogue
from streams.bundles.expand import BundleEventError, expand_event
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter

__all__ = ["BundleExpander", "KafkaBundleRefusals"]


class KafkaBundleRefusals:
    """A bundle event the ledger cannot take, as a dead letter on ``stock.deadletter.v1``."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, event: StockEventDict, error: BundleEventError) -> None:
        record = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{event.get('channel')}",
            reason=error.reason,
            error=error.message,
            original=orjson.dumps(event),
            key=str(event.get("sku")).encode(),
            event_id=str(event.get("event_id")),
        )
        value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, record)
        await self._publisher.produce(
            topics.STOCK_DEADLETTER.name, [(str(event.get("sku")).encode(), value)]
        )


class BundleExpander:
    """Splits a delivery's StockEvents into what the ledger takes and what it refuses."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def __call__(
        self, events: list[StockEventDict]
    ) -> tuple[list[StockEventDict], list[tuple[StockEventDict, BundleEventError]]]:
        if not self.catalogue:
            return events, []
        kept: list[StockEventDict] = []
        refused: list[tuple[StockEventDict, BundleEventError]] = []
        for event in events:
            try:
                kept.extend(expand_event(event, self.catalogue))
            except BundleEventError as exc:
                refused.append((event, exc))
        return kept, refused
