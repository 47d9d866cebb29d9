"""The ClickHouse schema of database ``stockflow`` (contract), as numbered migrations.

Every statement must run on Debian's ClickHouse 18.16 and on current releases
(platform notes, section C): MergeTree family only, plain types, no DateTime64,
LowCardinality, TTL, codecs, skipping indexes or ``CREATE OR REPLACE``.

Conventions of every table:

* Times are stored twice: ``x DateTime('UTC')`` for partitioning and date functions, and
  ``x_ms UInt64`` with the exact epoch milliseconds the records carry (no DateTime64 on 18.16).
* ``ReplacingMergeTree(ver)`` with the record's id in ``ORDER BY``: the sink delivers at least
  once, so the same record may be inserted twice; a merge keeps one copy *eventually*, and
  every query must dedupe itself (``FINAL`` or ``GROUP BY id``) rather than trust merges.
  Duplicates of one record carry the same time, so they land in the same month partition,
  where ReplacingMergeTree can see them.
* ``ver`` is the ledger's own time for the record (``applied_at``/``at`` ms): copies of one
  record are identical, so any copy is right; a later re-computation wins.
* Optional text is ``Nullable(String)`` except where it is part of a sort key (Nullable is not
  allowed there): the movement's channel is ``''`` when the cause event had none.

Materialised views (decision for exact reports): ClickHouse runs an MV on each *inserted
block*, before any merge, so an MV over a ReplacingMergeTree sees every duplicate. A
SummingMergeTree target would count a replayed sale twice, forever. So each MV target is
itself a ReplacingMergeTree keyed by ``movement_id``: it is a narrow, day-sorted copy of the
rows a report needs, duplicates collapse exactly like in the base table, and reports read
it with ``FINAL`` and sum per day at query time. Exact before and after merges, and a
backfill (``INSERT ... SELECT``) may overlap the MV's own inserts without harm.
"""

from __future__ import annotations

from dataclasses import dataclass

# Sales are units leaving on_hand to a customer: till sales and shipped orders
# (spelled out again in the daily_sales view below).
SALE_TYPES = ("sale", "order_shipped")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]  # ``{db}`` is replaced by the database name


_MOVEMENTS = """
CREATE TABLE IF NOT EXISTS {db}.stock_movements (
    movement_id String,
    event_id String,
    sku String,
    location String,
    channel String,
    type String,
    reason Nullable(String),
    delta_on_hand Int64,
    delta_reserved Int64,
    delta_unsellable Int64,
    delta_incoming Int64,
    on_hand_after Int64,
    reserved_after Int64,
    unsellable_after Int64,
    occurred_at DateTime('UTC'),
    occurred_at_ms UInt64,
    applied_at DateTime('UTC'),
    applied_at_ms UInt64,
    source_ref Nullable(String),
    kafka_partition UInt32,
    kafka_offset UInt64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (sku, movement_id)
"""

_LEVELS = """
CREATE TABLE IF NOT EXISTS {db}.stock_levels (
    sku String,
    channel String,
    quantity Int64,
    version UInt64,
    changed UInt8,
    cause_event_id String,
    occurred_at DateTime('UTC'),
    occurred_at_ms UInt64,
    at DateTime('UTC'),
    at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(at)
ORDER BY (sku, channel, version)
"""

_DECISIONS = """
CREATE TABLE IF NOT EXISTS {db}.decisions (
    decision_id String,
    event_id String,
    sku String,
    order_id Nullable(String),
    channel Nullable(String),
    location Nullable(String),
    qty Int64,
    outcome String,
    reason Nullable(String),
    available_before Int64,
    occurred_at DateTime('UTC'),
    occurred_at_ms UInt64,
    at DateTime('UTC'),
    at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(at)
ORDER BY (sku, decision_id)
"""

_ALERTS = """
CREATE TABLE IF NOT EXISTS {db}.alerts (
    alert_id String,
    kind String,
    sku String,
    location Nullable(String),
    channel Nullable(String),
    value Int64,
    threshold Int64,
    message String,
    event_id Nullable(String),
    at DateTime('UTC'),
    at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(at)
ORDER BY (sku, alert_id)
"""

_SALES_TARGET = """
CREATE TABLE IF NOT EXISTS {db}.daily_sales (
    day Date,
    sku String,
    channel String,
    movement_id String,
    units Int64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(day)
ORDER BY (sku, channel, day, movement_id)
"""

_SALES_SELECT = """
SELECT toDate(occurred_at) AS day, sku, channel, movement_id,
       -delta_on_hand AS units, ver
FROM {db}.stock_movements
WHERE type IN ('sale', 'order_shipped')
"""

_LOCATION_TARGET = """
CREATE TABLE IF NOT EXISTS {db}.daily_location_movements (
    day Date,
    location String,
    type String,
    sku String,
    movement_id String,
    delta_on_hand Int64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(day)
ORDER BY (location, day, type, movement_id)
"""

_LOCATION_SELECT = """
SELECT toDate(occurred_at) AS day, location, type, sku, movement_id, delta_on_hand, ver
FROM {db}.stock_movements
"""

# The access audit (stockflow.audit.v1): one row per write through an HTTP API.
# ``who`` leads the sort key: ``stockflow report audit --who`` reads one principal's rows.
_AUDIT = """
CREATE TABLE IF NOT EXISTS {db}.audit (
    audit_id String,
    at DateTime('UTC'),
    at_ms UInt64,
    service String,
    who String,
    method String,
    route String,
    action String,
    skus Array(String),
    ids Array(String),
    items UInt32,
    status UInt16,
    forwarded UInt8,
    kafka_partition UInt32,
    kafka_offset UInt64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(at)
ORDER BY (who, at, audit_id)
"""

# The lot of a movement (null: unlotted units); existing tables gain the column, old rows
# read it as null. ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: the migration runner
# skips an ADD COLUMN whose column is there (streams.warehouse.migrations).
_MOVEMENT_LOT = "ALTER TABLE {db}.stock_movements ADD COLUMN lot Nullable(String) AFTER source_ref"

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""

MIGRATIONS_TABLE = _MIGRATIONS_TABLE

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base tables", (_MOVEMENTS, _LEVELS, _DECISIONS, _ALERTS)),
    Migration(
        2,
        "daily sales and daily location movements",
        (
            _SALES_TARGET,
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_sales_mv TO {db}.daily_sales AS"
            + _SALES_SELECT,
            # Backfill rows inserted before the view existed; overlap is deduped by id.
            "INSERT INTO {db}.daily_sales (day, sku, channel, movement_id, units, ver)"
            + _SALES_SELECT,
            _LOCATION_TARGET,
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_location_movements_mv"
            " TO {db}.daily_location_movements AS" + _LOCATION_SELECT,
            "INSERT INTO {db}.daily_location_movements"
            " (day, location, type, sku, movement_id, delta_on_hand, ver)" + _LOCATION_SELECT,
        ),
    ),
    Migration(3, "access audit", (_AUDIT,)),
    Migration(4, "movement lot", (_MOVEMENT_LOT,)),
)

# -- Orders (orders.state.v1) ---------------------------------------------------------------
# One OrderState record per transition, keyed by order id, ``version`` 1, 2, 3, ... Only the
# country is kept of the ship-to (no postal code, no customer ref: the reports need neither).
#
# * ``orders``: one row per order and version, ReplacingMergeTree(version) ORDER BY order_id,
#   so a merge keeps the last version of each order. Reports never rely on that merge: they
#   take ``max(version)`` / ``argMax(x, version)`` per order, exact with unmerged parts and
#   copies (duplicate copies of one version are identical). Partitioned by the month the order
#   was placed, which every version carries unchanged, so all versions meet in one partition.
# * ``order_lines``: one row per order, version and line (the line's history); a report takes
#   the lines of the order's last version.
# * ``order_transitions``: one row per transition; (order_id, version) is its id, so a
#   replayed record collapses into it. ``reason`` is the transition's, else the state's.
_ORDERS = """
CREATE TABLE IF NOT EXISTS {db}.orders (
    order_id String,
    version UInt64,
    channel String,
    status String,
    route_reason Nullable(String),
    reason Nullable(String),
    attempts UInt32,
    delivery String,
    pickup_location Nullable(String),
    country Nullable(String),
    customer_type String,
    risk Nullable(String),
    shipping_cost Nullable(Int64),
    lines UInt32,
    units Int64,
    placed_at DateTime('UTC'),
    placed_at_ms UInt64,
    updated_at DateTime('UTC'),
    updated_at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(placed_at)
ORDER BY order_id
"""

_ORDER_LINES = """
CREATE TABLE IF NOT EXISTS {db}.order_lines (
    order_id String,
    version UInt64,
    line_id String,
    channel String,
    sku String,
    qty Int64,
    location Nullable(String),
    lot Nullable(String),
    status String,
    shipped_qty Int64,
    unit_price Nullable(Int64),
    currency Nullable(String),
    placed_at DateTime('UTC'),
    placed_at_ms UInt64,
    updated_at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(placed_at)
ORDER BY (order_id, version, line_id)
"""

_ORDER_TRANSITIONS = """
CREATE TABLE IF NOT EXISTS {db}.order_transitions (
    order_id String,
    version UInt64,
    channel String,
    from_status Nullable(String),
    to_status String,
    event_id String,
    reason Nullable(String),
    actor Nullable(String),
    at DateTime('UTC'),
    at_ms UInt64,
    placed_at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(at)
ORDER BY (order_id, version)
"""

MIGRATIONS += (Migration(5, "orders", (_ORDERS, _ORDER_LINES, _ORDER_TRANSITIONS)),)

# -- Purchase orders (replenishment.proposals.v1) -------------------------------------------
# One Proposal record per version, keyed by proposal id (= the purchase order number), the
# same shape as the orders above: ``purchase_orders`` one row per proposal and version,
# ReplacingMergeTree(version) ORDER BY proposal_id; ``purchase_order_lines`` one row per
# proposal, version and SKU. Reports take ``max(version)`` / ``argMax(x, version)`` per
# proposal and the lines of its last version, exact before any merge. Partitioned by the
# month the proposal was first planned (``created_at``, unchanged in every version).
# ``actor`` is the record's ``by`` (a SQL keyword): planner, auto, receipts or a login name.
_PURCHASE_ORDERS = """
CREATE TABLE IF NOT EXISTS {db}.purchase_orders (
    proposal_id String,
    version UInt64,
    status String,
    supplier String,
    location String,
    currency String,
    total Int64,
    lines UInt32,
    units Int64,
    auto UInt8,
    review_reason Nullable(String),
    send_via Nullable(String),
    send_ref Nullable(String),
    expected_on Nullable(Date),
    actor String,
    note Nullable(String),
    created_at DateTime('UTC'),
    created_at_ms UInt64,
    updated_at DateTime('UTC'),
    updated_at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY proposal_id
"""

_PURCHASE_ORDER_LINES = """
CREATE TABLE IF NOT EXISTS {db}.purchase_order_lines (
    proposal_id String,
    version UInt64,
    sku String,
    supplier String,
    location String,
    status String,
    supplier_sku String,
    qty Int64,
    proposed_qty Int64,
    pack_size Int64,
    moq Int64,
    unit_cost Int64,
    currency String,
    policy String,
    available Int64,
    incoming Int64,
    projected_available Int64,
    forecast_lead_time Float64,
    safety_stock Int64,
    forecast_method Nullable(String),
    reason String,
    last_order_qty Nullable(Int64),
    received_qty Int64,
    cancelled_qty Int64,
    created_at DateTime('UTC'),
    created_at_ms UInt64,
    updated_at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (proposal_id, version, sku)
"""

MIGRATIONS += (Migration(6, "purchase orders", (_PURCHASE_ORDERS, _PURCHASE_ORDER_LINES)),)
# -- Alert deliveries (notifications.deliveries.v1) -----------------------------------------
# One row per AlertDelivery record: what became of one alert for one recipient (recipient id,
# never an address). A held or digested delivery has a second row (same delivery_id) once
# sent, so (delivery_id, status) is the row's id: a replayed record collapses into the row it
# wrote the first time, and a query takes the last status per delivery_id with
# ``argMax(status, at_ms)``. ``recipient`` leads the sort key: "what reached whom".
_ALERT_DELIVERIES = """
CREATE TABLE IF NOT EXISTS {db}.alert_deliveries (
    delivery_id String,
    alert_id String,
    kind String,
    sku String,
    location Nullable(String),
    rule String,
    recipient String,
    channel String,
    mode String,
    status String,
    severity String,
    message String,
    attempts UInt32,
    error Nullable(String),
    alert_at DateTime('UTC'),
    alert_at_ms UInt64,
    at DateTime('UTC'),
    at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
PARTITION BY toYYYYMM(alert_at)
ORDER BY (recipient, delivery_id, status)
"""

MIGRATIONS += (Migration(7, "alert deliveries", (_ALERT_DELIVERIES,)),)
# -- Shipments (fulfilment.shipments.v1) ----------------------------------------------------
# One row per Shipment version (no address): carrier, tracking, status, units and the label's
# cost, the order's shipping cost as bought. ReplacingMergeTree(version) keeps each
# shipment's last version; cost per order or channel: ``argMax(cost_minor, version)`` per
# shipment_id, summed.
_SHIPMENTS = """
CREATE TABLE IF NOT EXISTS {db}.shipments (
    shipment_id String,
    version UInt64,
    order_id String,
    channel String,
    location String,
    wave_id Nullable(String),
    carrier String,
    service String,
    tracking_number String,
    status String,
    units UInt64,
    parcels UInt32,
    weight_g UInt64,
    cost_minor Int64,
    currency String,
    country Nullable(String),
    created_at DateTime('UTC'),
    created_at_ms UInt64,
    updated_at DateTime('UTC'),
    updated_at_ms UInt64,
    kafka_partition UInt32,
    kafka_offset UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (channel, order_id, shipment_id)
"""

MIGRATIONS += (Migration(8, "shipments", (_SHIPMENTS,)),)
# The carriers passed over before the one that sold the label (a fallback when not empty);
# older rows read it as empty.
_SHIPMENT_PASSED_OVER = (
    "ALTER TABLE {db}.shipments ADD COLUMN passed_over Array(String) AFTER cost_minor"
)

MIGRATIONS += (Migration(9, "shipment fallbacks", (_SHIPMENT_PASSED_OVER,)),)
