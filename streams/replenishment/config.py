"""The replenishment configuration: the ``replenishment:`` top key of the ledger's YAML file.

The ledger's parser accepts the key and ignores it; this module parses it into the frozen
values of :mod:`streams.replenishment.model`, once, at start. Every mistake raises
:class:`ReplenishmentConfigError` naming the key path (``replenishment.items[2].pack_size``),
what is wrong and, where it helps, what would be right. Unknown keys are refused: a typo in
a policy would otherwise silently fall back to a default.

```yaml
replenishment:
  history_days: 91            # days of demand history read for the forecasts
  plan_every_seconds: 3600    # `stockflow replenish run`
  suppliers:
    - id: acme
      name: ACME Furniture
      send_via: email         # email | edi | webhook
      email: [orders@acme.example]       # email: where purchase orders go
      # edi_folder: sftp://po@edi.acme.example:22/in   edi: plus edi_sender, edi_recipient
      # webhook_url: https://acme.example/po            webhook
      lead_time_days: 5
      currency: EUR
      order_days: [mon, wed, fri]        # default: every day
      min_order_value: 20000             # minor units
      auto_send: {max_total: 50000, max_change_percent: 25, first_order: false}
  items:
    - {sku: chair, supplier: acme, supplier_sku: ACME-CH-01, unit_cost: 2000,
       currency: EUR, pack_size: 6, moq: 12}
  preferred:
    - {sku: chair, location: paris-wh, supplier: acme}
  categories:
    furniture: [chair, table]
  policies:
    - {sku: chair, location: paris-wh, kind: min_max, min: 10, max: 40}
    - {category: furniture, location: lyon-store, kind: reorder_point, service_level: 0.95}
    - {category: furniture, kind: periodic, review_days: 7, service_level: 0.9}
  default_policy: {kind: reorder_point, service_level: 0.95}
  peaks:
    - {name: black-friday, start: 2026-11-27, end: 2026-11-30, factor: 2.5,
       category: furniture}
```
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from streams.replenishment.model import (
    AutoSend,
    Peak,
    Policy,
    PolicyKind,
    ReplenishmentConfig,
    SendVia,
    Supplier,
    SupplierItem,
)

__all__ = [
    "DAY_NAMES",
    "ReplenishmentConfigError",
    "load_replenishment",
    "parse_replenishment",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # weekday() 0..6

TOP_KEYS = {
    "suppliers",
    "items",
    "preferred",
    "categories",
    "policies",
    "default_policy",
    "peaks",
    "history_days",
    "plan_every_seconds",
}
_SUPPLIER_KEYS = {
    "id",
    "name",
    "send_via",
    "lead_time_days",
    "currency",
    "order_days",
    "min_order_value",
    "email",
    "edi_folder",
    "edi_sender",
    "edi_recipient",
    "webhook_url",
    "auto_send",
}
_AUTO_KEYS = {"max_total", "max_change_percent", "first_order"}
_ITEM_KEYS = {"sku", "supplier", "supplier_sku", "unit_cost", "currency", "pack_size", "moq"}
_PREFERRED_KEYS = {"sku", "location", "supplier"}
_POLICY_KEYS = {"kind", "min", "max", "service_level", "review_days", "safety_stock"}
_PEAK_KEYS = {"name", "start", "end", "factor", "category"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")  # ids end up in purchase order numbers


class ReplenishmentConfigError(ValueError):
    """A mistake in ``replenishment:``; ``path`` names the key (``replenishment.items[0].moq``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"configuration {path}: {message}")
        self.path = path
        self.message = message


# -- small checked readers -------------------------------------------------------------------


def _mapping(raw: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ReplenishmentConfigError(path, f"must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ReplenishmentConfigError(f"{path}.{key}", f"unknown key; expected one of {known}")
    return raw


def _list(raw: Any, path: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ReplenishmentConfigError(path, f"must be a list, got {type(raw).__name__}")
    return raw


def _whole(raw: Any, path: str, default: int, minimum: int = 0) -> int:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ReplenishmentConfigError(path, f"{raw!r} is not a whole number")
    if raw < minimum:
        raise ReplenishmentConfigError(path, f"{raw} is below {minimum}")
    return raw


def _number(raw: Any, path: str, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ReplenishmentConfigError(path, f"{raw!r} is not a number")
    return float(raw)


def _text(raw: Any, path: str, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ReplenishmentConfigError(path, "must be a non-empty string")
    if pattern is not None and not pattern.match(raw):
        raise ReplenishmentConfigError(
            path, f"{raw!r}: use letters, digits and . _ : - (no spaces)"
        )
    return raw


def _opt_text(raw: Any, path: str) -> str:
    if raw is None:
        return ""
    return _text(raw, path)


def _currency(raw: Any, path: str, default: str) -> str:
    if raw is None:
        return default
    if not isinstance(raw, str) or not _CURRENCY.match(raw):
        raise ReplenishmentConfigError(path, f"{raw!r} is not an ISO 4217 code such as EUR")
    return raw


def _date(raw: Any, path: str) -> date:
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise ReplenishmentConfigError(path, f"{raw!r} is not a date (YYYY-MM-DD)")


# -- sections --------------------------------------------------------------------------------


def _auto_send(raw: Any, path: str) -> AutoSend:
    entry = _mapping(raw, path, _AUTO_KEYS)
    change = _number(entry.get("max_change_percent"), f"{path}.max_change_percent", 0.0)
    if change < 0:
        raise ReplenishmentConfigError(f"{path}.max_change_percent", f"{change} is below 0")
    first = entry.get("first_order", False)
    if not isinstance(first, bool):
        raise ReplenishmentConfigError(f"{path}.first_order", f"{first!r} is not true or false")
    return AutoSend(
        max_total=_whole(entry.get("max_total"), f"{path}.max_total", 0),
        max_change_percent=change,
        first_order=first,
    )


def _order_days(raw: Any, path: str) -> frozenset[int]:
    if raw is None:
        return frozenset(range(7))
    days = [raw] if isinstance(raw, str) else _list(raw, path)
    if not days:
        raise ReplenishmentConfigError(path, "names no day; list some of " + ", ".join(DAY_NAMES))
    out = set()
    for i, day in enumerate(days):
        name = day.lower() if isinstance(day, str) else day
        if name not in DAY_NAMES:
            raise ReplenishmentConfigError(
                f"{path}[{i}]", f"{day!r} is not a day; use {', '.join(DAY_NAMES)}"
            )
        out.add(DAY_NAMES.index(name))
    return frozenset(out)


def _emails(raw: Any, path: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    values = [raw] if isinstance(raw, str) else _list(raw, path)
    for i, value in enumerate(values):
        if not isinstance(value, str) or not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ReplenishmentConfigError(f"{path}[{i}]", "is not an email address")
    return tuple(values)


def _supplier(raw: Any, path: str) -> Supplier:
    entry = _mapping(raw, path, _SUPPLIER_KEYS)
    sid = _text(entry.get("id"), f"{path}.id", pattern=_ID)
    via = entry.get("send_via")
    if via not in {v.value for v in SendVia}:
        raise ReplenishmentConfigError(
            f"{path}.send_via", f"{via!r} is not one of {', '.join(v.value for v in SendVia)}"
        )
    if "lead_time_days" not in entry:
        raise ReplenishmentConfigError(f"{path}.lead_time_days", "is required (days, 0 or more)")
    supplier = Supplier(
        id=sid,
        name=_text(entry.get("name", sid), f"{path}.name"),
        send_via=SendVia(via),
        lead_time_days=_whole(entry.get("lead_time_days"), f"{path}.lead_time_days", 0),
        currency=_currency(entry.get("currency"), f"{path}.currency", "EUR"),
        order_days=_order_days(entry.get("order_days"), f"{path}.order_days"),
        min_order_value=_whole(entry.get("min_order_value"), f"{path}.min_order_value", 0),
        email=_emails(entry.get("email"), f"{path}.email"),
        edi_folder=_opt_text(entry.get("edi_folder"), f"{path}.edi_folder"),
        edi_sender=_opt_text(entry.get("edi_sender"), f"{path}.edi_sender"),
        edi_recipient=_opt_text(entry.get("edi_recipient"), f"{path}.edi_recipient"),
        webhook_url=_opt_text(entry.get("webhook_url"), f"{path}.webhook_url"),
        auto_send=_auto_send(entry.get("auto_send"), f"{path}.auto_send"),
    )
    needs = {
        SendVia.EMAIL: ("email", bool(supplier.email), "an email address to send orders to"),
        SendVia.EDI: ("edi_folder", bool(supplier.edi_folder), "a folder or sftp:// URL"),
        SendVia.WEBHOOK: ("webhook_url", bool(supplier.webhook_url), "an http(s):// URL"),
    }
    key, present, what = needs[supplier.send_via]
    if not present:
        raise ReplenishmentConfigError(
            f"{path}.{key}", f"is required with send_via: {supplier.send_via.value} ({what})"
        )
    if supplier.send_via is SendVia.EDI:
        for key in ("edi_sender", "edi_recipient"):
            if not getattr(supplier, key):
                raise ReplenishmentConfigError(
                    f"{path}.{key}", "is required with send_via: edi (an EDIFACT party id)"
                )
    if supplier.webhook_url and not re.match(r"^https?://\S+$", supplier.webhook_url):
        raise ReplenishmentConfigError(f"{path}.webhook_url", "must be an http:// or https:// URL")
    return supplier


def _item(raw: Any, path: str, suppliers: Mapping[str, Supplier]) -> SupplierItem:
    entry = _mapping(raw, path, _ITEM_KEYS)
    sku = _text(entry.get("sku"), f"{path}.sku")
    supplier_id = _text(entry.get("supplier"), f"{path}.supplier")
    supplier = suppliers.get(supplier_id)
    if supplier is None:
        known = ", ".join(sorted(suppliers)) or "none"
        raise ReplenishmentConfigError(
            f"{path}.supplier", f"{supplier_id!r} is not a supplier (known: {known})"
        )
    currency = _currency(entry.get("currency"), f"{path}.currency", supplier.currency)
    if currency != supplier.currency:
        raise ReplenishmentConfigError(
            f"{path}.currency",
            f"{currency} differs from supplier {supplier_id}'s currency {supplier.currency}",
        )
    if "unit_cost" not in entry:
        raise ReplenishmentConfigError(f"{path}.unit_cost", "is required (minor units)")
    return SupplierItem(
        sku=sku,
        supplier=supplier_id,
        supplier_sku=_text(entry.get("supplier_sku", sku), f"{path}.supplier_sku"),
        unit_cost=_whole(entry.get("unit_cost"), f"{path}.unit_cost", 0),
        pack_size=_whole(entry.get("pack_size"), f"{path}.pack_size", 1, 1),
        moq=_whole(entry.get("moq"), f"{path}.moq", 0),
    )


def _service_level(raw: Any, path: str) -> float:
    level = _number(raw, path, 0.95)
    if not 0.5 < level <= 0.999:
        raise ReplenishmentConfigError(
            path, f"{level} is outside (0.5, 0.999]: a target such as 0.95 for 95 %"
        )
    return level


def _policy(raw: Any, path: str) -> Policy:
    entry = _mapping(raw, path, _POLICY_KEYS)
    kind = entry.get("kind")
    if kind not in {k.value for k in PolicyKind}:
        raise ReplenishmentConfigError(
            f"{path}.kind", f"{kind!r} is not one of {', '.join(k.value for k in PolicyKind)}"
        )
    low = _whole(entry.get("min"), f"{path}.min", 0)
    high = _whole(entry.get("max"), f"{path}.max", 0)
    if kind == PolicyKind.MIN_MAX:
        if "max" not in entry:
            raise ReplenishmentConfigError(f"{path}.max", "is required with kind: min_max")
        if low > high:
            raise ReplenishmentConfigError(f"{path}.min", f"min {low} is above max {high}")
        if high < 1:
            raise ReplenishmentConfigError(f"{path}.max", "must be at least 1")
    elif "min" in entry or "max" in entry:
        key = "min" if "min" in entry else "max"
        raise ReplenishmentConfigError(
            f"{path}.{key}", f"belongs to kind: min_max, not {kind} (remove it)"
        )
    safety = entry.get("safety_stock")
    return Policy(
        kind=PolicyKind(kind),
        min=low,
        max=high,
        service_level=_service_level(entry.get("service_level"), f"{path}.service_level"),
        review_days=_whole(entry.get("review_days"), f"{path}.review_days", 7, 1),
        safety_stock=None if safety is None else _whole(safety, f"{path}.safety_stock", 0),
    )


def _categories(raw: Any, path: str) -> dict[str, str]:
    entry = raw if raw is not None else {}
    if not isinstance(entry, dict):
        raise ReplenishmentConfigError(path, "must map a category to its SKUs: {furniture: [...]}")
    out: dict[str, str] = {}
    for category, skus in entry.items():
        where = f"{path}.{category}"
        _text(category, where)
        for i, sku in enumerate(_list(skus, where)):
            _text(sku, f"{where}[{i}]")
            if sku in out and out[sku] != category:
                raise ReplenishmentConfigError(
                    f"{where}[{i}]", f"SKU {sku!r} is already in category {out[sku]!r}"
                )
            out[sku] = category
    return out


def _peak(raw: Any, path: str, categories: Collection[str]) -> Peak:
    entry = _mapping(raw, path, _PEAK_KEYS)
    start = _date(entry.get("start"), f"{path}.start")
    end = _date(entry.get("end", start), f"{path}.end")
    if end < start:
        raise ReplenishmentConfigError(f"{path}.end", f"{end} is before start {start}")
    factor = _number(entry.get("factor"), f"{path}.factor", 1.0)
    if factor <= 0:
        raise ReplenishmentConfigError(f"{path}.factor", f"{factor} must be above 0")
    category = entry.get("category")
    if category is not None and category not in categories:
        raise ReplenishmentConfigError(
            f"{path}.category", f"{category!r} is not a category under replenishment.categories"
        )
    return Peak(
        name=_text(entry.get("name"), f"{path}.name"),
        start=start,
        end=end,
        factor=factor,
        category=category,
    )


def _location(raw: Any, path: str, locations: Collection[str] | None) -> str:
    name = _text(raw, path)
    if locations is not None and name not in locations:
        known = ", ".join(sorted(locations))
        raise ReplenishmentConfigError(path, f"{name!r} is not a location (known: {known})")
    return name


def parse_replenishment(
    raw: Any, *, locations: Collection[str] | None = None, path: str = "replenishment"
) -> ReplenishmentConfig:
    """``raw``: the value of the ``replenishment:`` key (None: nothing is planned).
    ``locations``: the ledger's location names, when known, to check the ones named here."""
    top = _mapping(raw, path, TOP_KEYS)
    suppliers: dict[str, Supplier] = {}
    for i, entry in enumerate(_list(top.get("suppliers"), f"{path}.suppliers")):
        supplier = _supplier(entry, f"{path}.suppliers[{i}]")
        if supplier.id in suppliers:
            raise ReplenishmentConfigError(
                f"{path}.suppliers[{i}].id", f"{supplier.id!r} is named twice"
            )
        suppliers[supplier.id] = supplier
    items: list[SupplierItem] = []
    for i, entry in enumerate(_list(top.get("items"), f"{path}.items")):
        item = _item(entry, f"{path}.items[{i}]", suppliers)
        if any(x.sku == item.sku and x.supplier == item.supplier for x in items):
            raise ReplenishmentConfigError(
                f"{path}.items[{i}]", f"{item.sku!r} from {item.supplier!r} is listed twice"
            )
        items.append(item)
    skus = {x.sku for x in items}
    categories = _categories(top.get("categories"), f"{path}.categories")
    for category in set(categories.values()) & skus:
        raise ReplenishmentConfigError(
            f"{path}.categories.{category}", "is also a SKU: policies could not tell them apart"
        )
    preferred: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(_list(top.get("preferred"), f"{path}.preferred")):
        where = f"{path}.preferred[{i}]"
        chosen = _mapping(entry, where, _PREFERRED_KEYS)
        sku = _text(chosen.get("sku"), f"{where}.sku")
        location = _location(chosen.get("location"), f"{where}.location", locations)
        supplier_id = _text(chosen.get("supplier"), f"{where}.supplier")
        if not any(x.sku == sku and x.supplier == supplier_id for x in items):
            raise ReplenishmentConfigError(
                f"{where}.supplier", f"{supplier_id!r} has no item for SKU {sku!r} under items"
            )
        if (sku, location) in preferred:
            raise ReplenishmentConfigError(where, f"{sku} at {location} is named twice")
        preferred[(sku, location)] = supplier_id
    policies: dict[tuple[str, str | None], Policy] = {}
    for i, entry in enumerate(_list(top.get("policies"), f"{path}.policies")):
        where = f"{path}.policies[{i}]"
        scope = _mapping(entry, where, _POLICY_KEYS | {"sku", "category", "location"})
        if ("sku" in scope) == ("category" in scope):
            raise ReplenishmentConfigError(where, "needs exactly one of sku or category")
        if "category" in scope:
            subject = _text(scope["category"], f"{where}.category")
            if subject not in categories.values():
                raise ReplenishmentConfigError(
                    f"{where}.category",
                    f"{subject!r} is not a category under replenishment.categories",
                )
        else:
            subject = _text(scope["sku"], f"{where}.sku")
        at = scope.get("location")
        place = None if at is None else _location(at, f"{where}.location", locations)
        policy = _policy({k: v for k, v in scope.items() if k in _POLICY_KEYS}, where)
        if (subject, place) in policies:
            raise ReplenishmentConfigError(
                where, f"{subject} at {place or 'every location'} has a policy already"
            )
        policies[(subject, place)] = policy
    default = top.get("default_policy")
    return ReplenishmentConfig(
        suppliers=suppliers,
        items=tuple(items),
        preferred=preferred,
        categories=categories,
        policies=policies,
        default_policy=None if default is None else _policy(default, f"{path}.default_policy"),
        peaks=tuple(
            _peak(entry, f"{path}.peaks[{i}]", set(categories.values()))
            for i, entry in enumerate(_list(top.get("peaks"), f"{path}.peaks"))
        ),
        history_days=_whole(top.get("history_days"), f"{path}.history_days", 91, 7),
        plan_every_seconds=_whole(
            top.get("plan_every_seconds"), f"{path}.plan_every_seconds", 3600, 1
        ),
    )


def _ledger_locations(raw: Mapping[str, Any]) -> set[str] | None:
    """The location names the ledger's part of the file declares (None: it declares none)."""
    names: set[str] = set()
    for entry in raw.get("locations") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            names.add(entry["name"])
    if isinstance(raw.get("default_location"), str):
        names.add(raw["default_location"])
    return names or None


def load_replenishment(path: str | Path | None) -> ReplenishmentConfig:
    """The ``replenishment:`` key of the YAML file at ``path`` (the ledger's STOCKFLOW_CONFIG);
    locations it names must be the ledger's locations of the same file."""
    if not path:
        return ReplenishmentConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ReplenishmentConfigError("<config>", f"cannot read {path}: {exc}") from None
    if raw is None:
        return ReplenishmentConfig()
    if not isinstance(raw, dict):
        raise ReplenishmentConfigError("<config>", f"{path} must hold a mapping")
    return parse_replenishment(raw.get("replenishment"), locations=_ledger_locations(raw))
