"""Order records of the connectors: ``stockflow.v1.Order`` built from a channel's own data.

Records are built and checked by :mod:`schemas.orders` (the one place an Order is made),
then encoded once with the codec (a record that does not fit raises
:class:`InvalidPayloadError`, so the webhook is answered 400 and nothing half-built reaches
Kafka). Only the fields the
schema allows are set: ship-to is country, postal code and coordinates; names, streets,
emails and phones never leave the channel.

Which path an order takes is the channel's ``orders`` setting:

- ``lines`` (default): today's per-line StockEvents (``order_placed`` / ``order_cancelled``
  / ``order_shipped``) to ``stock.events.v1``; no Order record;
- ``book``: Order records (placed, cancelled, shipped, returned) to ``orders.v1`` and no
  per-line order StockEvent; the order book reserves, releases and ships through the
  ledger. Stock facts that are not reservations stay StockEvents in both modes: a return
  restocked (``return_received``) and a disposition of returned units.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.framework.types import InvalidPayloadError
from schemas import orders
from schemas.codec import Codec, CodecError, single_object_codec
from schemas.times import now_ms
from streams.kernel import topics

OrderDict = dict[str, Any]
"""A ``stockflow.v1.Order`` record as a dict: every schema field, times in epoch ms."""

ORDER_MODES = ("lines", "book")
DEFAULT_ORDER_MODE = "lines"

# ISO 4217 minor-unit exponents that are not 2 (the table's default).
_EXPONENT = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"),
        0,
    ),
    **dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}

STOCK_FACTS = frozenset({"return_received"})
"""StockEvent types a connector still sends in ``book`` mode: stock facts, not reservations."""

_CHECKER: Codec | None = None


def stock_facts(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of ``events`` that stay StockEvents in ``book`` mode. Dropped with the
    per-line order events: a partial release (``order_cancelled`` of some units of a live
    order, a refund of units that never left), which has no Order event: the order book
    keeps those units reserved until the order ships or is cancelled."""
    return [e for e in events if e["type"] in STOCK_FACTS]


def minor_units(amount: object, currency: str | None) -> int | None:
    """``"19.99"`` EUR → 1999; JPY has no minor unit, KWD three. None when no amount."""
    if amount is None or amount == "":
        return None
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidPayloadError(f"price {amount!r} is not a number") from None
    exponent = _EXPONENT.get((currency or "").upper(), 2)
    return int((value * (10**exponent)).to_integral_value())


def order_line(
    line_id: object, sku: str, qty: int, unit_price: int | None = None, currency: str | None = None
) -> dict[str, Any]:
    return {
        "line_id": str(line_id),
        "sku": sku,
        "qty": int(qty),
        "unit_price": unit_price,
        "currency": ((currency or "").upper() or None) if unit_price is not None else None,
    }


def ship_to(
    country: str | None,
    postal_code: str | None = None,
    lat: object = None,
    lon: object = None,
) -> dict[str, Any] | None:
    """Only where the goods go: no name, street, email or phone. None without a country."""
    if not country:
        return None
    return {
        "country": str(country).upper(),
        "postal_code": (str(postal_code).strip() or None) if postal_code else None,
        "lat": None if lat in (None, "") else float(str(lat)),
        "lon": None if lon in (None, "") else float(str(lon)),
    }


def order_record(
    *,
    event_id: str,
    type: str,
    order_id: str,
    channel: str,
    placed_at: int,
    occurred_at: int,
    lines: Sequence[dict[str, Any]] = (),
    ship_to: dict[str, Any] | None = None,
    customer_ref: str | None = None,
    customer_type: str = "b2c",
    risk: str | None = None,
    location: str | None = None,
    note: str | None = None,
    pickup_location: str | None = None,
    ingested_at: int | None = None,
) -> OrderDict:
    """An Order from ``channel``'s connector (``source`` and ``by`` = ``connector:{channel}``),
    built and checked by :mod:`schemas.orders`; ``pickup_location`` makes it a pickup there."""
    record = orders.order_event(
        type,
        order_id,
        channel,
        event_id,
        occurred_at,
        placed_at=placed_at,
        ingested_at=now_ms() if ingested_at is None else ingested_at,
        lines=[dict(line) for line in lines],
        ship_to=ship_to,
        delivery="ship" if pickup_location is None else "pickup",
        pickup_location=pickup_location,
        customer_ref=customer_ref,
        customer_type=customer_type,
        risk=risk,
        location=location,
        note=note,
        by=f"connector:{channel}",
        source=f"connector:{channel}",
    )
    check(record)
    return record


def check(record: OrderDict) -> None:
    """Raise :class:`InvalidPayloadError` unless ``record`` is a well-formed Order (the
    contract's checks, then the codec's: nothing half-built reaches Kafka)."""
    global _CHECKER
    if _CHECKER is None:
        _CHECKER = single_object_codec()
    try:
        orders.check(record)
        _CHECKER.encode(topics.ORDERS.value_schema, record)
    except (orders.InvalidOrder, CodecError) as exc:
        raise InvalidPayloadError(f"order {record['order_id']}: {exc}") from None
