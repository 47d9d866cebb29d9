"""The order book's configuration: the ``orders:`` top key of the ledger's YAML file.

The ledger's parser accepts the key and ignores it; this module parses the order book's own
keys. Each sub-section is parsed by the module that owns it (``routing:`` by
:mod:`streams.orders.routing`, ``approvals:`` by :mod:`streams.orders.approvals`), and
:mod:`streams.orders.setup` composes the whole :class:`OrderConfig` (this module imports
neither, so they can raise :class:`OrderConfigError` from here without an import circle).

```yaml
orders:
  max_tries: 3              # routing plans tried per order before it is an exception
  resend_after_seconds: 30  # reservations of an order still routed after this are sent again
  channels:
    - name: shopify
      policy: all_or_nothing   # | ship_available | backorder_rest
      fee_percent: 2.9         # kept for the reports
      fee_fixed: 30            # minor units per order
  routing: {...}
  approvals: {...}
```
A channel the file does not name gets the defaults: all_or_nothing, no fees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "POLICIES",
    "ChannelOrders",
    "CoreConfig",
    "OrderConfigError",
    "mapping",
    "parse_core",
]

Policy = Literal["all_or_nothing", "ship_available", "backorder_rest"]
POLICIES: tuple[Policy, ...] = ("all_or_nothing", "ship_available", "backorder_rest")

TOP_KEYS = {"max_tries", "resend_after_seconds", "channels", "routing", "approvals"}
_CHANNEL_KEYS = {"name", "policy", "fee_percent", "fee_fixed"}


class OrderConfigError(ValueError):
    """A configuration error under ``orders:``; ``path`` is the key path at fault."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class ChannelOrders:
    """How one channel's orders are allocated, and what the channel costs (for reports)."""

    name: str
    policy: Policy = "all_or_nothing"
    fee_percent: float = 0.0
    fee_fixed: int = 0  # minor units per order


@dataclass(frozen=True)
class CoreConfig:
    channels: Mapping[str, ChannelOrders] = field(default_factory=dict)
    max_tries: int = 3
    resend_after_seconds: int = 30

    def channel(self, name: str) -> ChannelOrders:
        """The channel's settings; the defaults for a channel the file does not name."""
        return self.channels.get(name) or ChannelOrders(name)


def mapping(raw: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    """``raw`` as a mapping with only ``allowed`` keys (None: empty), else OrderConfigError."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise OrderConfigError(path, f"must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise OrderConfigError(f"{path}.{key}", f"unknown key; expected one of {known}")
    return raw


def whole(raw: Any, path: str, default: int, minimum: int = 0) -> int:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise OrderConfigError(path, f"{raw!r} is not a whole number")
    if raw < minimum:
        raise OrderConfigError(path, f"{raw} is below {minimum}")
    return raw


def parse_core(raw: Any, path: str = "orders") -> CoreConfig:
    """The order book's own keys of ``orders:`` (its sub-sections are left to their owners)."""
    top = mapping(raw, path, TOP_KEYS)
    items = top.get("channels") or []
    if not isinstance(items, list):
        raise OrderConfigError(f"{path}.channels", "must be a list of {name, policy, ...}")
    channels: dict[str, ChannelOrders] = {}
    for i, item in enumerate(items):
        where = f"{path}.channels[{i}]"
        entry = mapping(item, where, _CHANNEL_KEYS)
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise OrderConfigError(f"{where}.name", "must be a non-empty string")
        if name in channels:
            raise OrderConfigError(f"{where}.name", f"{name!r} is named twice")
        policy = entry.get("policy", "all_or_nothing")
        if policy not in POLICIES:
            raise OrderConfigError(
                f"{where}.policy", f"{policy!r} is not one of {', '.join(POLICIES)}"
            )
        percent = entry.get("fee_percent", 0)
        if isinstance(percent, bool) or not isinstance(percent, int | float) or percent < 0:
            raise OrderConfigError(f"{where}.fee_percent", f"{percent!r} is not a percentage")
        if percent > 100:
            raise OrderConfigError(f"{where}.fee_percent", f"{percent} is above 100")
        channels[name] = ChannelOrders(
            name=name,
            policy=policy,
            fee_percent=float(percent),
            fee_fixed=whole(entry.get("fee_fixed"), f"{where}.fee_fixed", 0),
        )
    return CoreConfig(
        channels=channels,
        max_tries=whole(top.get("max_tries"), f"{path}.max_tries", 3, 1),
        resend_after_seconds=whole(
            top.get("resend_after_seconds"), f"{path}.resend_after_seconds", 30, 1
        ),
    )
