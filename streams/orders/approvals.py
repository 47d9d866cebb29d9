"""Approval rules (a first version: no order waits for approval)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.orders.config import mapping

__all__ = ["ApprovalConfig", "CustomerBook", "approval_reason", "expired", "parse_approvals"]


@dataclass(frozen=True)
class ApprovalConfig:
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CustomerBook:
    """What the order book keeps per customer: orders seen, open B2B balance (minor units)."""

    orders_seen: int = 0
    open_balance: int = 0


def parse_approvals(raw: Any, path: str = "orders.approvals") -> ApprovalConfig:
    if raw is None:
        return ApprovalConfig()
    return ApprovalConfig(dict(mapping(raw, path, set(raw) if isinstance(raw, dict) else set())))


def approval_reason(
    order: Mapping[str, Any], total: int, book: CustomerBook, rules: ApprovalConfig
) -> str | None:
    """Why the order must wait for a person's approval; None: it need not."""
    return None


def expired(
    state: Mapping[str, Any], now_ms: int, rules: ApprovalConfig
) -> Literal["release", "escalate"] | None:
    """What to do with an order waiting for approval at ``now_ms``; None: keep waiting."""
    return None
