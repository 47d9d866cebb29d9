"""Record → ClickHouse rows: one pure function per record type.

Each mapper checks what ClickHouse would otherwise refuse or silently wrap (a negative time
in a UInt64 or DateTime column, a missing field), so a bad record fails here, with a reason,
and goes to the dead-letter topic instead of poisoning a whole insert.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MOVEMENT = "stockflow.v1.StockMovement"
LEVEL = "stockflow.v1.StockLevel"
DECISION = "stockflow.v1.Decision"
ALERT = "stockflow.v1.Alert"
AUDIT = "stockflow.v1.AuditRecord"

DEFAULT_CHANNEL = "*"  # the ledger's name for "a channel the configuration does not name"
MAX_DATETIME_MS = 4_294_967_295_000  # DateTime is a UInt32 of seconds


class RowError(ValueError):
    """A record that cannot become a row; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]


Row = tuple[Any, ...]

MOVEMENTS = Table(
    "stock_movements",
    (
        "movement_id",
        "event_id",
        "sku",
        "location",
        "channel",
        "type",
        "reason",
        "delta_on_hand",
        "delta_reserved",
        "delta_unsellable",
        "delta_incoming",
        "on_hand_after",
        "reserved_after",
        "unsellable_after",
        "occurred_at",
        "occurred_at_ms",
        "applied_at",
        "applied_at_ms",
        "source_ref",
        "kafka_partition",
        "kafka_offset",
        "ver",
        "lot",
    ),
)
LEVELS = Table(
    "stock_levels",
    (
        "sku",
        "channel",
        "quantity",
        "version",
        "changed",
        "cause_event_id",
        "occurred_at",
        "occurred_at_ms",
        "at",
        "at_ms",
        "kafka_partition",
        "kafka_offset",
        "ver",
    ),
)
DECISIONS = Table(
    "decisions",
    (
        "decision_id",
        "event_id",
        "sku",
        "order_id",
        "channel",
        "location",
        "qty",
        "outcome",
        "reason",
        "available_before",
        "occurred_at",
        "occurred_at_ms",
        "at",
        "at_ms",
        "kafka_partition",
        "kafka_offset",
        "ver",
    ),
)
ALERTS = Table(
    "alerts",
    (
        "alert_id",
        "kind",
        "sku",
        "location",
        "channel",
        "value",
        "threshold",
        "message",
        "event_id",
        "at",
        "at_ms",
        "kafka_partition",
        "kafka_offset",
        "ver",
    ),
)
AUDIT_TABLE = Table(
    "audit",
    (
        "audit_id",
        "at",
        "at_ms",
        "service",
        "who",
        "method",
        "route",
        "action",
        "skus",
        "ids",
        "items",
        "status",
        "forwarded",
        "kafka_partition",
        "kafka_offset",
        "ver",
    ),
)
TABLES: tuple[Table, ...] = (MOVEMENTS, LEVELS, DECISIONS, ALERTS, AUDIT_TABLE)


def _get(record: Mapping[str, Any], name: str) -> Any:
    try:
        return record[name]
    except KeyError:
        raise RowError("missing_field", f"field {name!r} is missing") from None


def _text(record: Mapping[str, Any], name: str) -> str:
    value = _get(record, name)
    if not isinstance(value, str) or not value:
        raise RowError("bad_field", f"{name} must be a non-empty string, got {value!r}")
    return value


def _opt_text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise RowError("bad_field", f"{name} must be a string or null, got {value!r}")
    return value


def _int(record: Mapping[str, Any], name: str) -> int:
    value = _get(record, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError("bad_field", f"{name} must be an integer, got {value!r}")
    return value


def _int_or_zero(record: Mapping[str, Any], name: str) -> int:
    return _int(record, name) if record.get(name) is not None else 0


def _ms(record: Mapping[str, Any], name: str) -> int:
    value = _int(record, name)
    if not 0 <= value <= MAX_DATETIME_MS:
        raise RowError("bad_time", f"{name}={value} ms is outside 1970..2106 (DateTime range)")
    return value


def movement_rows(r: Mapping[str, Any], partition: int, offset: int) -> list[Row]:
    occurred, applied = _ms(r, "occurred_at"), _ms(r, "applied_at")
    return [
        (
            _text(r, "movement_id"),
            _text(r, "event_id"),
            _text(r, "sku"),
            _text(r, "location"),
            _opt_text(r, "channel") or "",
            _text(r, "type"),
            _opt_text(r, "reason"),
            _int(r, "delta_on_hand"),
            _int(r, "delta_reserved"),
            _int(r, "delta_unsellable"),
            _int_or_zero(r, "delta_incoming"),
            _int(r, "on_hand_after"),
            _int(r, "reserved_after"),
            _int_or_zero(r, "unsellable_after"),
            occurred // 1000,
            occurred,
            applied // 1000,
            applied,
            _opt_text(r, "source_ref"),
            partition,
            offset,
            applied,
            _opt_text(r, "lot"),
        )
    ]


def level_rows(r: Mapping[str, Any], partition: int, offset: int) -> list[Row]:
    """One row per channel of the record, the default quantity as channel ``*``.

    Every channel is stored, changed or not, so each row set is a full picture at ``version``.
    """
    sku, version = _text(r, "sku"), _int(r, "version")
    if version < 0:
        raise RowError("bad_field", f"version must not be negative, got {version}")
    occurred, at = _ms(r, "occurred_at"), _ms(r, "at")
    channels = _get(r, "channels")
    if not isinstance(channels, Mapping):
        raise RowError("bad_field", f"channels must be a map, got {channels!r}")
    quantities = dict(channels)
    quantities[DEFAULT_CHANNEL] = _int_or_zero(r, "default_quantity")
    changed = set(r.get("changed_channels") or ())
    cause = _text(r, "cause_event_id")
    rows: list[Row] = []
    for channel in sorted(quantities):
        qty = quantities[channel]
        if isinstance(qty, bool) or not isinstance(qty, int):
            raise RowError("bad_field", f"channels[{channel!r}] must be an integer, got {qty!r}")
        rows.append(
            (
                sku,
                channel,
                qty,
                version,
                int(channel in changed),
                cause,
                occurred // 1000,
                occurred,
                at // 1000,
                at,
                partition,
                offset,
                at,
            )
        )
    return rows


def decision_rows(r: Mapping[str, Any], partition: int, offset: int) -> list[Row]:
    occurred, at = _ms(r, "occurred_at"), _ms(r, "at")
    return [
        (
            _text(r, "decision_id"),
            _text(r, "event_id"),
            _text(r, "sku"),
            _opt_text(r, "order_id"),
            _opt_text(r, "channel"),
            _opt_text(r, "location"),
            _int(r, "qty"),
            _text(r, "outcome"),
            _opt_text(r, "reason"),
            _int(r, "available_before"),
            occurred // 1000,
            occurred,
            at // 1000,
            at,
            partition,
            offset,
            at,
        )
    ]


def alert_rows(r: Mapping[str, Any], partition: int, offset: int) -> list[Row]:
    at = _ms(r, "at")
    return [
        (
            _text(r, "alert_id"),
            _text(r, "kind"),
            _text(r, "sku"),
            _opt_text(r, "location"),
            _opt_text(r, "channel"),
            _int(r, "value"),
            _int(r, "threshold"),
            _text(r, "message"),
            _opt_text(r, "event_id"),
            at // 1000,
            at,
            partition,
            offset,
            at,
        )
    ]


def _texts(record: Mapping[str, Any], name: str) -> list[str]:
    value = record.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError("bad_field", f"{name} must be a list of strings, got {value!r}")
    return value


def audit_rows(r: Mapping[str, Any], partition: int, offset: int) -> list[Row]:
    at, status = _ms(r, "at"), _int(r, "status")
    if not 0 <= status <= 999:
        raise RowError("bad_field", f"status must be an HTTP status, got {status}")
    return [
        (
            _text(r, "audit_id"),
            at // 1000,
            at,
            _text(r, "service"),
            _text(r, "who"),
            _text(r, "method"),
            _text(r, "route"),
            _text(r, "action"),
            _texts(r, "skus"),
            _texts(r, "ids"),
            max(0, _int_or_zero(r, "items")),
            status,
            int(bool(r.get("forwarded"))),
            partition,
            offset,
            at,
        )
    ]


Mapper = Callable[[Mapping[str, Any], int, int], list[Row]]
MAPPERS: dict[str, tuple[Table, Mapper]] = {
    MOVEMENT: (MOVEMENTS, movement_rows),
    LEVEL: (LEVELS, level_rows),
    DECISION: (DECISIONS, decision_rows),
    ALERT: (ALERTS, alert_rows),
    AUDIT: (AUDIT_TABLE, audit_rows),
}


def to_rows(
    schema: str, record: Mapping[str, Any], partition: int, offset: int
) -> tuple[Table, list[Row]]:
    """The table and rows for one decoded record read at ``partition``/``offset``."""
    try:
        table, mapper = MAPPERS[schema]
    except KeyError:
        raise RowError("unexpected_schema", f"the sink does not store {schema}") from None
    return table, mapper(record, partition, offset)


def event_id_of(record: Mapping[str, Any]) -> str | None:
    """The id to log and dead-letter with, whatever the record type."""
    for name in (
        "event_id",
        "cause_event_id",
        "movement_id",
        "decision_id",
        "alert_id",
        "audit_id",
    ):
        value = record.get(name)
        if isinstance(value, str):
            return value
    return None
