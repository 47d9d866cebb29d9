"""Which price writer each channel kind uses: one line per kind.

A factory receives the channel's client and mapping and returns a
:class:`connectors.framework.prices.PriceWriter` (``connectors.price_runtime`` passes the
``client`` attribute of the channel's stock pusher, as ``connectors.runtime`` built it, and
the channel's mapping). A kind whose client already implements ``set_prices`` on SKUs (and
``get_prices`` for price drift) is registered as ``"kind": _client``. A channel is priced
when its configuration entry has ``prices:`` rules and its kind is listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.framework.prices import PriceWriter
from connectors.shopify.prices import ShopifyPrices
from connectors.woocommerce.prices import WooPrices

PriceWriterFactory = Callable[[Any, Any], PriceWriter]


def _client(client: Any, mapping: Any) -> PriceWriter:
    """The client is the writer (it addresses products by SKU)."""
    writer: PriceWriter = client
    return writer


WRITERS: dict[str, PriceWriterFactory] = {
    "shopify": lambda client, mapping: ShopifyPrices(client, mapping),
    "woocommerce": lambda client, mapping: WooPrices(client, mapping),
    "magento": _client,
    "prestashop": _client,
}


def writer_for(kind: str, client: Any, mapping: Any) -> PriceWriter | None:
    """The price writer of a channel of ``kind``, or ``None`` when the kind has none."""
    factory = WRITERS.get(kind)
    return None if factory is None else factory(client, mapping)
