"""The one registry of Kafka topics: name, key, value schema, cleanup and single writer.

No topic name is written as a string anywhere else in the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Writer(StrEnum):
    """The one component allowed to produce to a topic."""

    CONNECTORS = "connectors"  # inbound connectors and the worker's HTTP intake
    LEDGER = "ledger"
    LEDGER_AND_CONNECTORS = "ledger+connectors"  # each writes its own alert kinds, see below
    ANY = "any"  # the dead-letter topic takes records from every component
    OPERATOR = "operator"  # the `stockflow token` command
    API = "api"  # the HTTP APIs of the worker and the connectors (the access audit)
    ORDER_BOOK = "order-book"  # the worker's order agent
    PURCHASING = "purchasing"  # the purchasing service (`replenish run`, `web`)
    NOTIFIER = "notifier"  # the alert notifier (`stockflow notify run`)
    FULFILMENT = "fulfilment"  # waves, picking and shipping


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    value_schema: str
    cleanup_policy: str
    writer: Writer
    doc: str
    partitions: int | None = None  # None: the installation's STOCKFLOW_PARTITIONS


STOCK_EVENTS = TopicSpec(
    name="stock.events.v1",
    key="sku",
    value_schema="stockflow.v1.StockEvent",
    cleanup_policy="delete",
    writer=Writer.CONNECTORS,
    doc="Normalised inbound stock events from every channel and system (plus the hold-expiry"
    " events of the ledger's own timer, which must be ordered with the SKU's other events, and"
    " the purchasing service's purchase_ordered / purchase_cancelled, source purchasing).",
)
STOCK_LEVELS = TopicSpec(
    name="stock.levels.v1",
    key="sku",
    value_schema="stockflow.v1.StockLevel",
    cleanup_policy="compact",
    writer=Writer.LEDGER,
    doc="Sellable quantity per channel, one record per SKU and change.",
)
STOCK_MOVEMENTS = TopicSpec(
    name="stock.movements.v1",
    key="sku",
    value_schema="stockflow.v1.StockMovement",
    cleanup_policy="delete",
    writer=Writer.LEDGER,
    doc="One record per applied movement of a quantity at a location.",
)
STOCK_DECISIONS = TopicSpec(
    name="stock.decisions.v1",
    key="sku",
    value_schema="stockflow.v1.Decision",
    cleanup_policy="delete",
    writer=Writer.LEDGER,
    doc="Accepted, rejected or backordered order lines and holds.",
)
STOCK_ALERTS = TopicSpec(
    name="stock.alerts.v1",
    key="sku",
    value_schema="stockflow.v1.Alert",
    cleanup_policy="delete",
    writer=Writer.LEDGER_AND_CONNECTORS,
    doc="Low stock, out of stock, back in stock, discrepancy, oversell attempt (written by the"
    " ledger, about stock figures); drift (written by the connectors, about a channel showing"
    " another quantity than the ledger's); po_late and preorder_at_risk (written by the"
    " purchasing service, about a purchase order past its day, and the pre-orders sold against"
    " a late or cancelled one); short_pick and delivery_exception (written by fulfilment, about"
    " a pick that found fewer units and a parcel the carrier cannot deliver); pickup_failed"
    " (written by fulfilment's shipping service, a carrier pickup not booked by its deadline)."
    " Disjoint kinds:"
    " no alert kind has two writers.",
)
STOCK_DEADLETTER = TopicSpec(
    name="stock.deadletter.v1",
    key="source topic",
    value_schema="stockflow.v1.DeadLetter",
    cleanup_policy="delete",
    writer=Writer.ANY,
    doc="Records no component could process: the original bytes plus the error.",
)
STOCKFLOW_AUDIT = TopicSpec(
    name="stockflow.audit.v1",
    key="who",
    value_schema="stockflow.v1.AuditRecord",
    cleanup_policy="delete",
    writer=Writer.API,
    doc="One record per write through an HTTP API (who, route and action, SKUs and ids,"
    " when, status answered); never a request body, a token or personal data.",
)

ORDERS = TopicSpec(
    name="orders.v1",
    key="order id",
    value_schema="stockflow.v1.Order",
    cleanup_policy="delete",
    writer=Writer.CONNECTORS,
    doc="Inbound order events: orders placed on every channel, the channels' later changes"
    " (cancelled, shipped, returned) and operators' actions through the worker's API.",
)
ORDERS_STATE = TopicSpec(
    name="orders.state.v1",
    key="order id",
    value_schema="stockflow.v1.OrderState",
    cleanup_policy="compact",
    writer=Writer.ORDER_BOOK,
    doc="The current state of every order, one record per transition (compacted: the last"
    " one per order stays).",
)

REPLENISHMENT_PROPOSALS = TopicSpec(
    name="replenishment.proposals.v1",
    key="proposal id",
    value_schema="stockflow.v1.Proposal",
    cleanup_policy="compact",
    writer=Writer.PURCHASING,
    doc="Supplier order proposals and the purchase orders they become, one record per version"
    " (compacted: the last one per proposal stays).",
)

NOTIFICATION_DELIVERIES = TopicSpec(
    name="notifications.deliveries.v1",
    key="delivery id",
    value_schema="stockflow.v1.AlertDelivery",
    cleanup_policy="delete",
    writer=Writer.NOTIFIER,
    doc="What became of each alert for each recipient (delivered, failed, suppressed, held,"
    " digested): recipient ids, never addresses. The notifier rebuilds its pending holds and"
    " digests, and the deliveries already made, from it at start.",
)

API_TOKENS = TopicSpec(
    name="stockflow.tokens.v1",
    key="token name",
    value_schema="stockflow.v1.ApiToken",
    cleanup_policy="compact",
    writer=Writer.OPERATOR,
    doc="The HTTP APIs' bearer tokens, hashed: one record per name and change (created,"
    " revoked). Every worker and connectors process reads it whole and follows it.",
    partitions=1,
)

PRICE_EVENTS = TopicSpec(
    name="prices.events.v1",
    key="sku",
    value_schema="stockflow.v1.PriceChange",
    cleanup_policy="compact",
    writer=Writer.OPERATOR,
    doc="Base price changes (`stockflow price set`, back-office feeds): the connectors read it"
    " whole at start and keep, per SKU, the highest version already due (compacted: the last"
    " change per SKU stays, so a price in force is never lost to retention).",
)
FULFILMENT_WAVES = TopicSpec(
    name="fulfilment.waves.v1",
    key="wave id",
    value_schema="stockflow.v1.Wave",
    cleanup_policy="compact",
    writer=Writer.FULFILMENT,
    doc="Waves of orders picked together per location (planned, picking, picked, closed) with"
    " their pick confirmations; compacted: the last version of each wave stays. The wave"
    " service also writes short picks' adjustments (stock.events.v1), re-routing (orders.v1)"
    " and short_pick alerts.",
)

FULFILMENT_SHIPMENTS = TopicSpec(
    name="fulfilment.shipments.v1",
    key="shipment id",
    value_schema="stockflow.v1.Shipment",
    cleanup_policy="compact",
    writer=Writer.FULFILMENT,
    doc="Parcels shipped by the shipping service (`stockflow ship run`): order, lines, carrier,"
    " tracking number, label URL, cost, status, one record per version (compacted: the last"
    " one per shipment stays). No address.",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    STOCK_EVENTS,
    STOCK_LEVELS,
    STOCK_MOVEMENTS,
    STOCK_DECISIONS,
    STOCK_ALERTS,
    STOCK_DEADLETTER,
    API_TOKENS,
    STOCKFLOW_AUDIT,
    ORDERS,
    ORDERS_STATE,
    REPLENISHMENT_PROPOSALS,
    NOTIFICATION_DELIVERIES,
    PRICE_EVENTS,
    FULFILMENT_WAVES,
)
ALL_TOPICS += (FULFILMENT_SHIPMENTS,)  # the shipping service

OUTPUT_TOPICS: tuple[TopicSpec, ...] = (
    STOCK_LEVELS,
    STOCK_MOVEMENTS,
    STOCK_DECISIONS,
    STOCK_ALERTS,
)


# What the sink stores in ClickHouse: the ledger's outputs, the access audit, order states.
SINK_TOPICS: tuple[TopicSpec, ...] = (*OUTPUT_TOPICS, STOCKFLOW_AUDIT, ORDERS_STATE)
SINK_TOPICS += (REPLENISHMENT_PROPOSALS,)  # purchase orders (migration 6)
SINK_TOPICS += (NOTIFICATION_DELIVERIES,)  # alert deliveries → alert_deliveries
SINK_TOPICS += (FULFILMENT_SHIPMENTS,)  # shipments and their cost → shipments (migration 8)


def by_name(name: str) -> TopicSpec:
    for spec in ALL_TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(t.name for t in ALL_TOPICS)}")
