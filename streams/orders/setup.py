"""The whole order configuration, composed from the ``orders:`` key of the ledger's YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streams.orders.approvals import ApprovalConfig, parse_approvals
from streams.orders.config import ChannelOrders, CoreConfig, OrderConfigError, parse_core
from streams.orders.routing import RoutingConfig, parse_routing

__all__ = ["OrderConfig", "load_order_config", "parse_order_config"]


@dataclass(frozen=True)
class OrderConfig:
    core: CoreConfig = field(default_factory=CoreConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    approvals: ApprovalConfig = field(default_factory=ApprovalConfig)

    def channel(self, name: str) -> ChannelOrders:
        return self.core.channel(name)

    @property
    def max_tries(self) -> int:
        return self.core.max_tries


def parse_order_config(raw: Any) -> OrderConfig:
    """``raw``: the value of the ``orders:`` key (None when absent: every default)."""
    core = parse_core(raw)
    section = raw if isinstance(raw, dict) else {}
    return OrderConfig(
        core=core,
        routing=parse_routing(section.get("routing")),
        approvals=parse_approvals(section.get("approvals")),
    )


def load_order_config(path: str | Path | None) -> OrderConfig:
    """The ``orders:`` key of the YAML file at ``path`` (the ledger's STOCKFLOW_CONFIG)."""
    if not path:
        return OrderConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise OrderConfigError("<config>", f"cannot read {path}: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise OrderConfigError("<config>", "must be a mapping")
    return parse_order_config((raw or {}).get("orders"))
