"""Approval rules: which orders wait for a person (``pending_approval``), and what happens to
an approval nobody answers. Pure: the order book calls these with what it keeps.

```yaml
orders:
  approvals:
    channels:
      - name: shopify
        total_above: 100000        # minor units: an order totalling more waits
        risk: [high]               # the channel's risk levels that wait (case ignored)
        b2b_credit: true           # a B2B order past its customer's credit limit waits
        new_customer_above: 20000  # a new customer's first order totalling more waits
        expire_after_seconds: 86400
        on_expiry: escalate        # | release
    credit_limits: {c-81: 500000}  # customer_ref: credit limit in minor units
    default_credit_limit: null     # limit of a B2B customer not listed (null: not checked)
```

- A channel not named here has no approval rule: its orders never wait, except an order its
  channel has not been paid for yet (``risk: payment_pending``, :data:`PAYMENT_PENDING`, as
  Amazon's ``Pending`` orders): it always waits, its stock held, until the channel
  confirms the payment (an ``approved`` from its connector) or cancels it. No warehouse may
  ship an order before it is paid.
- Amounts are minor units of the order's currency (the rules do not convert currencies).
- ``b2b_credit`` (default true) checks a ``b2b`` order whose customer has a limit (listed,
  else ``default_credit_limit``): its open balance (:class:`CustomerBook`) plus this order's
  total above the limit waits.
- ``new_customer_above``: an order whose customer has no order seen before, or no
  ``customer_ref`` at all (a guest), totalling more waits.
- The reason is ``code: detail``; the code (:data:`REASONS`) is stable, for reports.
- **Expiry**: an order pending longer than ``expire_after_seconds`` (default one day) is,
  per ``on_expiry``: ``release`` (approved by default: its held stock is released to the
  warehouse), or ``escalate`` (the default: it stays ``pending_approval``, its stock still
  held, and the order book records the escalation with a ``reason`` starting with
  :data:`ESCALATED` and raises an alert; an escalated order never expires again, a person
  decides).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.orders.errors import OrderConfigError

__all__ = [
    "ESCALATED",
    "REASONS",
    "ApprovalConfig",
    "ChannelApproval",
    "CustomerBook",
    "approval_reason",
    "expired",
    "order_total",
    "parse_approvals",
    "pending_since",
]

Expiry = Literal["release", "escalate"]
EXPIRY: tuple[Expiry, ...] = ("release", "escalate")
DEFAULT_EXPIRE_S = 86_400
ESCALATED = "approval_escalated"  # reason prefix of an escalated pending order
REASONS = ("risk", "credit_limit", "total_above", "new_customer_above", "payment_pending")
PAYMENT_PENDING = "payment_pending"  # the risk a channel gives an order it has not been paid for

_TOP_KEYS = {"channels", "credit_limits", "default_credit_limit"}
_CHANNEL_KEYS = {
    "name",
    "total_above",
    "risk",
    "b2b_credit",
    "new_customer_above",
    "expire_after_seconds",
    "on_expiry",
}


@dataclass(frozen=True)
class ChannelApproval:
    """One channel's approval rules; None disables a threshold."""

    name: str
    total_above: int | None = None
    risk: frozenset[str] = frozenset()
    b2b_credit: bool = True
    new_customer_above: int | None = None
    expire_after_seconds: int = DEFAULT_EXPIRE_S
    on_expiry: Expiry = "escalate"


@dataclass(frozen=True)
class ApprovalConfig:
    channels: Mapping[str, ChannelApproval] = field(default_factory=dict)
    credit_limits: Mapping[str, int] = field(default_factory=dict)
    default_credit_limit: int | None = None

    def channel(self, name: str) -> ChannelApproval | None:
        """The channel's rules; None for a channel the configuration does not name."""
        return self.channels.get(name)

    def credit_limit(self, customer_ref: str | None) -> int | None:
        if customer_ref is not None and customer_ref in self.credit_limits:
            return self.credit_limits[customer_ref]
        return self.default_credit_limit


@dataclass
class CustomerBook:
    """What the order book keeps per customer: orders seen, open B2B balance (minor units:
    the total of its orders allocated and not yet paid for / delivered, as the book counts)."""

    orders_seen: int = 0
    open_balance: int = 0


def order_total(order: Mapping[str, Any]) -> int:
    """The order's total in minor units: qty * unit_price over its priced lines."""
    return sum(
        int(line["qty"]) * int(line["unit_price"])
        for line in order.get("lines") or ()
        if line.get("unit_price") is not None
    )


def approval_reason(
    order: Mapping[str, Any], total: int, book: CustomerBook, rules: ApprovalConfig
) -> str | None:
    """Why the order must wait for a person's approval (``code: detail``); None: it need not.
    ``total`` is the order's total (:func:`order_total`), ``book`` its customer's."""
    risk = order.get("risk")
    if isinstance(risk, str) and risk.lower() == PAYMENT_PENDING:
        return f"{PAYMENT_PENDING}: the channel has not confirmed the payment"
    rule = rules.channel(str(order.get("channel")))
    if rule is None:
        return None
    if isinstance(risk, str) and risk.lower() in rule.risk:
        return f"risk: the channel rates the order {risk.lower()}"
    if rule.b2b_credit and order.get("customer_type") == "b2b":
        limit = rules.credit_limit(order.get("customer_ref"))
        if limit is not None and book.open_balance + total > limit:
            return f"credit_limit: open balance {book.open_balance} + order {total} > limit {limit}"
    if rule.total_above is not None and total > rule.total_above:
        return f"total_above: order {total} > {rule.total_above}"
    new = book.orders_seen == 0 or not order.get("customer_ref")
    if rule.new_customer_above is not None and new and total > rule.new_customer_above:
        return f"new_customer_above: first order {total} > {rule.new_customer_above}"
    return None


def pending_since(state: Mapping[str, Any]) -> int:
    """When the order (an OrderState) became pending: its last transition's time when it
    went to pending_approval, else its updated_at."""
    transition = state.get("transition") or {}
    if transition.get("to_status") == "pending_approval" and transition.get("at") is not None:
        return int(transition["at"])
    return int(state.get("updated_at") or 0)


def expired(state: Mapping[str, Any], now_ms: int, rules: ApprovalConfig) -> Expiry | None:
    """What to do with an order (an OrderState) at ``now_ms``: ``release`` or ``escalate``
    once it has been pending for its channel's ``expire_after_seconds``; None otherwise (not
    pending, not expired yet, already escalated, or a channel without approval rules)."""
    if state.get("status") != "pending_approval":
        return None
    if str(state.get("reason") or "").startswith(ESCALATED):
        return None
    rule = rules.channel(str(state.get("channel")))
    if rule is None:
        return None
    if now_ms - pending_since(state) < rule.expire_after_seconds * 1000:
        return None
    return rule.on_expiry


def parse_approvals(raw: Any, path: str = "orders.approvals") -> ApprovalConfig:
    """The ``orders.approvals`` section (None: no rule); OrderConfigError with the key path."""
    top = _mapping(raw, path, _TOP_KEYS)
    limits_raw = _mapping(top.get("credit_limits"), f"{path}.credit_limits", None)
    limits = {
        str(ref): _amount(value, f"{path}.credit_limits.{ref}") for ref, value in limits_raw.items()
    }
    default_limit = top.get("default_credit_limit")
    if default_limit is not None:
        default_limit = _amount(default_limit, f"{path}.default_credit_limit")
    items = top.get("channels") or []
    if not isinstance(items, list):
        raise OrderConfigError(f"{path}.channels", "must be a list of {name, total_above, ...}")
    channels: dict[str, ChannelApproval] = {}
    for i, item in enumerate(items):
        rule = _channel(item, f"{path}.channels[{i}]")
        if rule.name in channels:
            raise OrderConfigError(f"{path}.channels[{i}].name", f"{rule.name!r} is named twice")
        channels[rule.name] = rule
    return ApprovalConfig(channels, limits, default_limit)


def _channel(raw: Any, path: str) -> ChannelApproval:
    entry = _mapping(raw, path, _CHANNEL_KEYS)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise OrderConfigError(f"{path}.name", "must be a non-empty string (the channel)")
    risk = entry.get("risk") or []
    if not isinstance(risk, list) or not all(isinstance(r, str) and r for r in risk):
        raise OrderConfigError(f"{path}.risk", "must be a list of risk levels, like [high]")
    b2b = entry.get("b2b_credit", True)
    if not isinstance(b2b, bool):
        raise OrderConfigError(f"{path}.b2b_credit", f"{b2b!r} is not true or false")
    on_expiry = entry.get("on_expiry", "escalate")
    if on_expiry not in EXPIRY:
        raise OrderConfigError(f"{path}.on_expiry", f"{on_expiry!r}; choose release or escalate")
    expire = entry.get("expire_after_seconds", DEFAULT_EXPIRE_S)
    expire = _amount(expire, f"{path}.expire_after_seconds")
    if expire < 1:
        raise OrderConfigError(f"{path}.expire_after_seconds", "at least 1 second")
    total = entry.get("total_above")
    new = entry.get("new_customer_above")
    return ChannelApproval(
        name=name,
        total_above=None if total is None else _amount(total, f"{path}.total_above"),
        risk=frozenset(r.lower() for r in risk),
        b2b_credit=b2b,
        new_customer_above=None if new is None else _amount(new, f"{path}.new_customer_above"),
        expire_after_seconds=expire,
        on_expiry=on_expiry,
    )


def _mapping(raw: Any, path: str, allowed: set[str] | None) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise OrderConfigError(path, f"must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if allowed is not None and key not in allowed:
            known = ", ".join(sorted(allowed))
            raise OrderConfigError(f"{path}.{key}", f"unknown key; expected one of {known}")
    return raw


def _amount(raw: Any, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise OrderConfigError(path, f"{raw!r} is not a whole number (minor units, seconds)")
    if raw < 0:
        raise OrderConfigError(path, f"{raw} is negative")
    return raw
