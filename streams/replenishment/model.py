"""What the replenishment configuration holds, as frozen values (parsed by ``config``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class SendVia(StrEnum):
    EMAIL = "email"
    EDI = "edi"
    WEBHOOK = "webhook"


class PolicyKind(StrEnum):
    MIN_MAX = "min_max"  # order up to max when available + incoming <= min
    REORDER_POINT = "reorder_point"  # lead-time demand + safety stock for a service level
    PERIODIC = "periodic"  # every N days, up to the next period's forecast + safety stock


@dataclass(frozen=True, slots=True)
class AutoSend:
    """Proposals below ``max_total`` (minor units) whose every line changed by at most
    ``max_change_percent`` from the last order go out without review."""

    max_total: int = 0  # 0: never automatic
    max_change_percent: float = 0.0
    first_order: bool = False  # a line with no earlier order to compare passes the change rule


@dataclass(frozen=True, slots=True)
class Supplier:
    id: str
    name: str
    send_via: SendVia
    lead_time_days: int
    currency: str = "EUR"
    order_days: frozenset[int] = frozenset(range(7))  # weekday numbers, Monday = 0
    min_order_value: int = 0  # minor units
    email: tuple[str, ...] = ()  # where email orders go (configuration only, never Kafka)
    edi_folder: str = ""  # a local folder or sftp://user@host:port/path for EDIFACT ORDERS
    edi_sender: str = ""  # our EDIFACT party id (UNB sender)
    edi_recipient: str = ""  # the supplier's EDIFACT party id (UNB recipient)
    webhook_url: str = ""
    auto_send: AutoSend = AutoSend()


@dataclass(frozen=True, slots=True)
class SupplierItem:
    sku: str
    supplier: str
    supplier_sku: str
    unit_cost: int  # minor units of the supplier's currency
    pack_size: int = 1
    moq: int = 0


@dataclass(frozen=True, slots=True)
class Policy:
    """How one SKU x location (or a category x location, or a category) is replenished."""

    kind: PolicyKind
    min: int = 0  # min_max
    max: int = 0  # min_max
    service_level: float = 0.95  # reorder_point, periodic
    review_days: int = 7  # periodic
    safety_stock: int | None = None  # fixed safety stock; None: from the service level


@dataclass(frozen=True, slots=True)
class Peak:
    """A promotion or season: demand of ``category`` (None: every category) times
    ``factor`` from ``start`` to ``end`` inclusive."""

    name: str
    start: date
    end: date
    factor: float
    category: str | None = None


@dataclass(frozen=True, slots=True)
class ReplenishmentConfig:
    suppliers: dict[str, Supplier] = field(default_factory=dict)
    items: tuple[SupplierItem, ...] = ()
    # preferred supplier per (sku, location); absent: the only or the cheapest item
    preferred: dict[tuple[str, str], str] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)  # sku -> category
    # policy lookup order: (sku, location), (category, location), (category, None)
    policies: dict[tuple[str, str | None], Policy] = field(default_factory=dict)
    default_policy: Policy | None = None  # None: SKUs without a policy are not planned
    peaks: tuple[Peak, ...] = ()
    history_days: int = 91  # demand history read for forecasts
    plan_every_seconds: int = 3600  # `stockflow replenish run`
