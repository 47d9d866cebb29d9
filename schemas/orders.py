"""The Order contract: building and checking an order event, in one place.

The worker's ``POST /v1/orders``, the operators' actions and the channel connectors build
their ``Order`` records here, and the order book checks what it reads with the same
:func:`problems`, so an order the API answers "accepted" is never dead-lettered as malformed
by the book. Event types, delivery methods and customer types are read from ``Order.avsc``.

The JSON shape of ``POST /v1/orders`` (:func:`from_json`)::

    {"order_id": "1001", "channel": "erp", "lines": [{"line_id", "sku", "qty",
     "unit_price"?, "currency"?}], "ship_to": {"country", "postal_code"?, "lat"?, "lon"?},
     "delivery"?: "ship" | "pickup", "pickup_location"?, "customer_ref"?,
     "customer_type"?: "b2c" | "b2b", "risk"?, "placed_at"?}

- ``order_id`` is the **channel's own id** of the order; the record's id is
  ``channel:order_id`` (``erp:1001``). An id already starting with ``channel:`` is refused
  (``prefixed_order_id``) rather than guessed at, so one order never gets two ids.
- **No personal data enters**: an item carrying a name, an email, a phone or a street
  (:data:`PERSONAL_FIELDS`, at the top or in ``ship_to``) is refused with
  ``personal_data``, naming the fields, rather than stripped in silence: the sender learns
  that it sends what it must not, and nothing of it is kept (dead letters hold the item
  with those values removed, :func:`redacted`). A ``customer_ref`` that looks like an email
  is refused the same way.
- Any other unknown field is refused (``unknown_field``), as ``/v1/events`` does.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, TypeGuard

from schemas.events import CONNECTOR_ID_SEPARATOR
from schemas.loader import current_schemas
from schemas.times import now_ms, parse_time_ms

__all__ = [
    "ACTIONABLE",
    "ACTIONS",
    "COUNTRIES",
    "MAX_LINES",
    "MAX_QTY",
    "MAX_TEXT",
    "ORDER_TYPES",
    "PERSONAL_FIELDS",
    "InvalidOrder",
    "action_event",
    "check",
    "from_json",
    "order_event",
    "order_id_of",
    "problems",
    "redacted",
]

SCHEMA_NAME = "stockflow.v1.Order"


def _fields() -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in current_schemas()[SCHEMA_NAME].raw["fields"]}


def _enum(kind: Any) -> tuple[str, ...]:
    kinds = kind if isinstance(kind, list) else [kind]
    for k in kinds:
        if isinstance(k, dict) and k.get("type") == "enum":
            return tuple(k["symbols"])
    raise TypeError(f"{kind!r} is not an enum")  # the .avsc changed shape


_FIELDS = _fields()
FIELDS = tuple(_FIELDS)
# 'unknown' is what an older reader sees for a type added after it: never applied.
ORDER_TYPES = frozenset(_enum(_FIELDS["type"]["type"])) - {"unknown"}
DELIVERIES = _enum(_FIELDS["delivery"]["type"])
CUSTOMER_TYPES = _enum(_FIELDS["customer_type"]["type"])
_DEFAULTS = {n: f["default"] for n, f in _FIELDS.items() if "default" in f and n != "type"}

# Operators' actions through the API, and the order statuses (OrderState.status) each fits.
# The API answers 409 for an action its order's current status does not take; the order book
# applies the same table (an action reaching it in another status is recorded, not applied).
ACTIONS = {
    "approve": "approved",
    "reject": "rejected",
    "reroute": "rerouted",
    "cancel": "cancel_requested",
}
_OPEN = frozenset(
    {
        "received",
        "routed",
        "allocated",
        "partially_allocated",
        "backordered",
        "exception",
        "pending_approval",
        "released",
        "ready_for_pickup",
    }
)
ACTIONABLE: dict[str, frozenset[str]] = {
    "approved": frozenset({"pending_approval"}),
    "rejected": frozenset({"pending_approval", "exception"}),
    "rerouted": frozenset({"exception", "backordered", "partially_allocated", "pending_approval"}),
    "cancel_requested": _OPEN,  # not once a parcel left, nor on a closed order
}

MAX_TEXT = 256  # characters of any string field (ids, SKUs, notes)
MAX_ID = 128  # characters of the channel's order id, a line id, a customer ref
MAX_LINES = 500  # lines of one order
MAX_QTY = 10**6  # units of one line; more is a unit error at the source
MAX_PRICE = 10**12  # minor units of one unit price
MIN_TIME_MS = 946_684_800_000  # 2000-01-01, as schemas.events
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# ISO 3166-1 alpha-2, the officially assigned codes (249)
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK
    DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR
    GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM
    KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
    MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL
    PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST
    SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG
    VI VN VU WF WS YE YT ZA ZM ZW"""
COUNTRIES = frozenset(_COUNTRY_CODES.split())

# Fields that carry personal data: refused wherever they appear in an item or its ship_to.
PERSONAL_FIELDS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "full_name",
        "company",
        "email",
        "phone",
        "mobile",
        "address",
        "address1",
        "address2",
        "address_line1",
        "address_line2",
        "street",
        "street2",
        "line1",
        "line2",
        "city",
        "customer",
        "customer_name",
        "customer_email",
        "billing_address",
        "shipping_address",
        "vat_number",
        "tax_id",
    }
)
_JSON_TOP = frozenset(
    {
        "order_id",
        "channel",
        "lines",
        "ship_to",
        "delivery",
        "pickup_location",
        "customer_ref",
        "customer_type",
        "risk",
        "placed_at",
    }
)
_JSON_LINE = frozenset({"line_id", "sku", "qty", "unit_price", "currency"})
_JSON_SHIP_TO = frozenset({"country", "postal_code", "lat", "lon"})
_REDACTED = "(personal data removed)"


class InvalidOrder(ValueError):  # noqa: N818 - named as schemas.events.InvalidEvent
    """An order that is malformed. ``reason`` is a stable code (dead-letter reason, metric
    label); ``message`` starts with the field at fault."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def order_id_of(channel: str, channel_order_id: str) -> str:
    """The order's id on orders.v1: ``channel:id`` (the Kafka key)."""
    return f"{channel}:{channel_order_id}"


def order_event(
    type: str,  # the Avro field name
    order_id: str,
    channel: str,
    event_id: str,
    occurred_at: int,
    *,
    placed_at: int | None = None,
    ingested_at: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A complete Order record with the schema's defaults; unknown names raise TypeError."""
    unknown = set(fields) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"not Order fields: {sorted(unknown)}")
    record: dict[str, Any] = dict(_DEFAULTS)
    record.update(
        event_id=event_id,
        type=type,
        order_id=order_id,
        channel=channel,
        placed_at=occurred_at if placed_at is None else placed_at,
        occurred_at=occurred_at,
        ingested_at=occurred_at if ingested_at is None else ingested_at,
    )
    record.update(fields)
    return record


def action_event(
    type: str,
    order_id: str,
    *,
    by: str,
    note: str | None = None,
    location: str | None = None,
    placed_at: int = MIN_TIME_MS,
    at: int | None = None,
    source: str = "api",
    event_id: str | None = None,
) -> dict[str, Any]:
    """An operator's action on ``order_id`` (approved, rejected, rerouted, cancel_requested),
    checked: InvalidOrder naming the first problem. ``by`` is who (the API token's name);
    ``location`` only for rerouted (None: route again); ``placed_at`` is the order's when
    known (the record needs one; the book keeps the order's own). The id is unique per call
    unless ``event_id`` is given."""
    when = now_ms() if at is None else at
    channel = order_id.partition(":")[0]
    record = order_event(
        type,
        order_id,
        channel,
        event_id or f"{order_id}:{type}:{uuid.uuid4().hex}",
        when,
        placed_at=placed_at,
        ingested_at=when,
        by=by,
        note=note,
        location=location,
        source=source,
    )
    if type not in ACTIONABLE:
        raise InvalidOrder("unknown_action", f"type: {type!r} is not an operator's action")
    if location is not None and type != "rerouted":
        raise InvalidOrder("bad_location", f"location: only for rerouted, not {type}")
    check(record)
    return record


def check(order: Mapping[str, Any]) -> str:
    """The order event's type when it is well formed; InvalidOrder naming the first problem."""
    found = problems(order)
    if found:
        raise found[0]
    return str(order["type"])


def problems(order: Mapping[str, Any]) -> list[InvalidOrder]:
    """Every problem of ``order`` (an Order record as the codec gives it), most basic first."""
    out: list[InvalidOrder] = []
    kind = order.get("type")
    if kind not in ORDER_TYPES:
        known = ", ".join(sorted(ORDER_TYPES))
        out.append(InvalidOrder("unknown_type", f"type: {kind!r} is not one of {known}"))
    for name in ("event_id", "order_id", "channel", "source"):
        _text(out, name, order.get(name), required=True)
    for name in (
        "pickup_location",
        "customer_ref",
        "risk",
        "location",
        "note",
        "by",
        "tracking_number",
        "carrier",
    ):
        _text(out, name, order.get(name), required=False)
    channel, order_id = order.get("channel"), order.get("order_id")
    if isinstance(channel, str) and not _CHANNEL.fullmatch(channel):
        out.append(
            InvalidOrder(
                "bad_channel",
                f"channel: {channel!r}; lower-case letters, digits, '.', '_' or '-' (at most 64)",
            )
        )
    elif isinstance(channel, str) and isinstance(order_id, str):
        own = order_id.removeprefix(f"{channel}:")
        if own == order_id or not own.strip():
            out.append(InvalidOrder("bad_order_id", f"order_id: {order_id!r} is not {channel}:id"))
    for name in ("placed_at", "occurred_at", "ingested_at"):
        value = order.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            out.append(InvalidOrder(f"bad_{name}", f"{name}: epoch milliseconds are required"))
        elif not MIN_TIME_MS <= value < MAX_TIME_MS:
            out.append(
                InvalidOrder(
                    f"bad_{name}",
                    f"{name}: {value} ms is not between 2000-01-01 and 2100-01-01; "
                    "send epoch milliseconds (not seconds) from a set clock",
                )
            )
    if order.get("delivery") not in DELIVERIES:
        out.append(
            InvalidOrder(
                "bad_delivery",
                f"delivery: {order.get('delivery')!r}; choose {' or '.join(DELIVERIES)}",
            )
        )
    if order.get("customer_type") not in CUSTOMER_TYPES:
        out.append(
            InvalidOrder(
                "bad_customer_type",
                f"customer_type: {order.get('customer_type')!r}; "
                f"choose {' or '.join(CUSTOMER_TYPES)}",
            )
        )
    ref = order.get("customer_ref")
    if isinstance(ref, str) and _EMAIL.search(ref):
        out.append(
            InvalidOrder(
                "personal_data",
                "customer_ref: looks like an email; send the channel's opaque customer id",
            )
        )
    out.extend(_lines_problems(order.get("lines"), placed=kind == "placed"))
    if kind == "placed":
        out.extend(_placed_problems(order))
    return out


def _text(out: list[InvalidOrder], name: str, value: Any, *, required: bool) -> None:
    if value is None:
        if required:
            out.append(InvalidOrder(f"missing_{name}", f"{name}: required"))
    elif not isinstance(value, str) or not value.strip():
        out.append(InvalidOrder("bad_text", f"{name}: must be a non-empty string"))
    elif len(value) > MAX_TEXT:
        out.append(InvalidOrder("too_long", f"{name}: longer than {MAX_TEXT} characters"))


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _lines_problems(lines: Any, *, placed: bool) -> list[InvalidOrder]:
    if not isinstance(lines, list):
        return [InvalidOrder("bad_lines", "lines: a list of {line_id, sku, qty, ...}")]
    if placed and not lines:
        return [InvalidOrder("missing_lines", "lines: a placed order needs at least one line")]
    if len(lines) > MAX_LINES:
        return [InvalidOrder("too_many_lines", f"lines: at most {MAX_LINES} per order")]
    out: list[InvalidOrder] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        where = f"lines[{i}]"
        if not isinstance(line, Mapping):
            out.append(InvalidOrder("bad_lines", f"{where}: an object {{line_id, sku, qty}}"))
            continue
        line_id, sku, qty = line.get("line_id"), line.get("sku"), line.get("qty")
        if not isinstance(line_id, str) or not line_id.strip():
            out.append(InvalidOrder("missing_line_id", f"{where}.line_id: a non-empty string"))
        elif len(line_id) > MAX_ID:
            out.append(InvalidOrder("too_long", f"{where}.line_id: longer than {MAX_ID}"))
        elif line_id in seen:
            out.append(
                InvalidOrder("duplicate_line_id", f"{where}.line_id: {line_id!r} appears twice")
            )
        else:
            seen.add(line_id)
        if not isinstance(sku, str) or not sku.strip():
            out.append(InvalidOrder("blank_sku", f"{where}.sku: a non-empty string"))
        elif len(sku) > MAX_TEXT:
            out.append(InvalidOrder("too_long", f"{where}.sku: longer than {MAX_TEXT}"))
        if not _is_int(qty):
            out.append(InvalidOrder("bad_qty", f"{where}.qty: {qty!r} is not a whole number"))
        elif qty <= 0:
            out.append(InvalidOrder("bad_qty", f"{where}.qty: more than 0 units (got {qty})"))
        elif qty > MAX_QTY:
            out.append(InvalidOrder("qty_out_of_range", f"{where}.qty: more than {MAX_QTY:,}"))
        out.extend(_price_problems(where, line.get("unit_price"), line.get("currency")))
    return out


def _price_problems(where: str, price: Any, currency: Any) -> list[InvalidOrder]:
    out = []
    if price is not None and (not _is_int(price) or not 0 <= price <= MAX_PRICE):
        out.append(
            InvalidOrder(
                "bad_unit_price",
                f"{where}.unit_price: whole minor units (cents) from 0 to {MAX_PRICE:,}",
            )
        )
    if currency is not None and not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        out.append(
            InvalidOrder(
                "bad_currency",
                f"{where}.currency: {currency!r} is not an ISO 4217 code (3 capital letters, EUR)",
            )
        )
    if price is not None and currency is None:
        out.append(InvalidOrder("missing_currency", f"{where}.currency: required with unit_price"))
    return out


def _placed_problems(order: Mapping[str, Any]) -> list[InvalidOrder]:
    out = []
    delivery, pickup = order.get("delivery"), order.get("pickup_location")
    if delivery == "pickup" and not pickup:
        out.append(
            InvalidOrder(
                "missing_pickup_location", "pickup_location: the store a pickup is collected at"
            )
        )
    if delivery == "ship" and pickup is not None:
        out.append(InvalidOrder("bad_pickup_location", "pickup_location: only for pickup"))
    ship_to = order.get("ship_to")
    if ship_to is None:
        if delivery == "ship":
            out.append(InvalidOrder("missing_ship_to", "ship_to: required to ship an order"))
        return out
    if not isinstance(ship_to, Mapping):
        return [*out, InvalidOrder("bad_ship_to", "ship_to: an object {country, postal_code}")]
    country = ship_to.get("country")
    if not isinstance(country, str) or country not in COUNTRIES:
        hint = " (the United Kingdom is GB)" if country == "UK" else ""
        out.append(
            InvalidOrder(
                "bad_country",
                f"ship_to.country: {country!r} is not an ISO 3166-1 alpha-2 code{hint}",
            )
        )
    postal = ship_to.get("postal_code")
    if postal is not None and (not isinstance(postal, str) or not 0 < len(postal.strip()) <= 16):
        out.append(InvalidOrder("bad_postal_code", "ship_to.postal_code: 1 to 16 characters"))
    lat, lon = ship_to.get("lat"), ship_to.get("lon")
    if (lat is None) != (lon is None):
        out.append(InvalidOrder("bad_coordinates", "ship_to: lat and lon go together"))
    for name, value, bound in (("lat", lat, 90), ("lon", lon, 180)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            out.append(InvalidOrder("bad_coordinates", f"ship_to.{name}: a number of degrees"))
        elif not -bound <= value <= bound:
            out.append(InvalidOrder("bad_coordinates", f"ship_to.{name}: within ±{bound}"))
    return out


def from_json(
    item: Any, *, source: str = "api", received: int | None = None
) -> tuple[dict[str, Any] | None, list[InvalidOrder]]:
    """A placed Order record from one item of ``POST /v1/orders``, or every problem found.

    JSON shapes (unknown and personal fields, ISO times) are checked here; the record is then
    checked by :func:`problems`, the check the order book makes."""
    if not isinstance(item, Mapping):
        return None, [InvalidOrder("bad_item", "item is not a JSON object")]
    out: list[InvalidOrder] = []
    ship_to = item.get("ship_to")
    lines = item.get("lines")
    personal = sorted(
        {k for k in item if k in PERSONAL_FIELDS}
        | {f"ship_to.{k}" for k in (ship_to if isinstance(ship_to, Mapping) else ())}
        & {f"ship_to.{k}" for k in PERSONAL_FIELDS}
    )
    if personal:
        out.append(
            InvalidOrder(
                "personal_data",
                f"{', '.join(personal)}: personal data is never accepted; the channel keeps "
                "names, streets, emails and phones; send country, postal_code and "
                "customer_ref only",
            )
        )
    unknown = sorted(set(item) - _JSON_TOP - PERSONAL_FIELDS)
    if isinstance(ship_to, Mapping):
        unknown += [f"ship_to.{k}" for k in sorted(set(ship_to) - _JSON_SHIP_TO - PERSONAL_FIELDS)]
    if isinstance(lines, list):
        for i, line in enumerate(lines):
            if isinstance(line, Mapping):
                unknown += [f"lines[{i}].{k}" for k in sorted(set(line) - _JSON_LINE)]
    if unknown:
        out.append(InvalidOrder("unknown_field", f"unknown field(s): {', '.join(unknown)}"))
    when = now_ms() if received is None else received
    placed = when
    if item.get("placed_at") is not None:
        try:
            placed = parse_time_ms(item["placed_at"], "placed_at")
        except ValueError as exc:
            out.append(InvalidOrder("bad_placed_at", str(exc)))
    channel, own_id = item.get("channel"), item.get("order_id")
    if isinstance(channel, str) and isinstance(own_id, str) and own_id.startswith(f"{channel}:"):
        out.append(
            InvalidOrder(
                "prefixed_order_id",
                f"order_id: send the channel's own id ({own_id.removeprefix(channel + ':')!r}); "
                f"stockflow names the order {channel}:id itself",
            )
        )
    if own_id is not None and (not isinstance(own_id, str) or not own_id.strip()):
        out.append(InvalidOrder("bad_order_id", "order_id: the channel's id, a non-empty string"))
    elif isinstance(own_id, str) and CONNECTOR_ID_SEPARATOR in own_id:
        out.append(
            InvalidOrder(
                "bad_order_id",
                f"order_id: no {CONNECTOR_ID_SEPARATOR!r} (ids containing it belong to the "
                "connectors, and could not be named in a URL path)",
            )
        )
    elif isinstance(own_id, str) and len(own_id) > MAX_ID:
        out.append(InvalidOrder("too_long", f"order_id: longer than {MAX_ID} characters"))
    if channel is None:
        out.append(InvalidOrder("missing_channel", "channel: required"))
    if own_id is None:
        out.append(InvalidOrder("missing_order_id", "order_id: required (the channel's id)"))
    if ship_to is not None and isinstance(ship_to, Mapping):
        ship_to = {k: ship_to.get(k) for k in _JSON_SHIP_TO}
    if isinstance(lines, list):
        lines = [
            {k: line.get(k) for k in _JSON_LINE} if isinstance(line, Mapping) else line
            for line in lines
        ]
    if out:  # the record's own check would only repeat or hide these
        return None, out
    order_id = order_id_of(str(channel), str(own_id))
    record = order_event(
        "placed",
        order_id,
        channel,  # type: ignore[arg-type]  # checked by problems()
        f"{order_id}:placed",
        placed,
        ingested_at=when,
        lines=lines if lines is not None else [],
        ship_to=ship_to,
        delivery=item.get("delivery") or "ship",
        pickup_location=item.get("pickup_location"),
        customer_ref=item.get("customer_ref"),
        customer_type=item.get("customer_type") or "b2c",
        risk=item.get("risk"),
        source=source,
    )
    found = problems(record)
    return (None, found) if found else (record, [])


def redacted(item: Any) -> Any:
    """``item`` with the values of personal fields replaced, for a dead letter or a log."""
    if not isinstance(item, Mapping):
        return item
    out = {k: (_REDACTED if k in PERSONAL_FIELDS else v) for k, v in item.items()}
    if isinstance(out.get("ship_to"), Mapping):
        out["ship_to"] = redacted(out["ship_to"])
    return out
