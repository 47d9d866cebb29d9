"""A refused order line reaches the channel: what to do, once per decision.

The ledger answers every order line on ``stock.decisions.v1``; a ``rejected`` line (no
location it may sell from holds the units) still stands on the shop until the connector
acts. Per channel (``on_refusal`` in the connectors configuration):

- ``cancel``: cancel the order on the channel, restock off, with a note saying which line
  was refused and why (the channel's cancellation then releases the order's other lines
  through the usual webhook);
- ``backorder``: leave the order, mark it backordered (a tag on Shopify, a private note and
  order meta on WooCommerce);
- ``flag`` (default): tag the order for a human and list it at ``GET /v1/exceptions``.

Only the decisions of order lines this connector published are acted on (their ids are
``<channel>/<account>/order/<id>/line/<id>/placed``); holds and other sources are left
alone. A decision redelivered (consumer restart, rebalance) is recognised by its id, and
every channel action is idempotent on the channel too (cancelling a cancelled order is a
no-op, tags are a set, notes carry the line's marker and are not written twice).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.framework.dedupe import DedupeStore
from connectors.framework.types import ThrottledError, UnavailableError
from schemas.times import ms_to_iso

log = logging.getLogger(__name__)

POLICIES = ("cancel", "backorder", "flag")
DEFAULT_POLICY = "flag"


@dataclass(frozen=True, slots=True)
class Refusal:
    """One rejected order line, in the channel's own ids (no personal data)."""

    decision_id: str
    channel: str
    order_id: str  # the channel's order id, e.g. "5001"
    line_id: str
    sku: str
    qty: int
    reason: str
    at: int  # when the ledger decided, epoch ms

    def note(self, action: str) -> str:
        """The merchant-facing note; ``[stockflow line <id>]`` marks it as written."""
        return (
            f"[stockflow line {self.line_id}] {self.qty} x {self.sku} refused by the stock "
            f"ledger ({self.reason}): {action}."
        )


def refusal_from(decision: Mapping[str, Any], channel: str, account: str) -> Refusal | None:
    """The refusal a decision stands for, if it is a rejected line this connector published."""
    if decision.get("outcome") != "rejected" or decision.get("channel") != channel:
        return None
    event_id = str(decision.get("event_id") or "")
    prefix = f"{channel}/{account}/"
    parts = event_id.removeprefix(prefix).split("/")
    if (
        not event_id.startswith(prefix)
        or len(parts) != 5
        or parts[0] != "order"
        or parts[2] != "line"
        # a bundle's component: ``.../placed|{component}`` (connectors.framework.bundles)
        or parts[4].partition("|")[0] != "placed"
    ):
        return None
    return Refusal(
        decision_id=str(decision["decision_id"]),
        channel=channel,
        order_id=parts[1],
        line_id=parts[3],
        sku=str(decision["sku"]),
        qty=int(decision["qty"]),
        reason=str(decision.get("reason") or "rejected"),
        at=int(decision["at"]),
    )


class RefusalActions(Protocol):
    """A channel's side of the policies; each call is idempotent on the channel."""

    channel: str
    account: str

    async def cancel(self, refusal: Refusal) -> None: ...

    async def backorder(self, refusal: Refusal) -> None: ...

    async def flag(self, refusal: Refusal) -> None: ...


class ExceptionsView:
    """The flagged order lines, newest last, at most ``max_items`` (``GET /v1/exceptions``)."""

    def __init__(self, max_items: int = 10_000) -> None:
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._max = max_items

    def add(self, refusal: Refusal, action: str, error: str | None = None) -> None:
        row = {
            "channel": refusal.channel,
            "order_id": refusal.order_id,
            "line_id": refusal.line_id,
            "sku": refusal.sku,
            "qty": refusal.qty,
            "reason": refusal.reason,
            "action": action,
            "at": ms_to_iso(refusal.at),
        }
        if error is not None:
            row["error"] = error
        self._items[refusal.decision_id] = row
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def rows(self) -> list[dict[str, Any]]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class RefusalHandler:
    """Applies each channel's policy to the decisions it is handed."""

    def __init__(
        self,
        actions: Mapping[str, RefusalActions],
        policies: Mapping[str, str],
        view: ExceptionsView,
        *,
        attempts: int = 5,
        backoff_s: float = 1.0,
    ) -> None:
        self.actions = dict(actions)
        self.policies = {name: policies.get(name, DEFAULT_POLICY) for name in self.actions}
        self.view = view
        self.done = DedupeStore(max_keys=100_000, ttl_s=7 * 24 * 3600)
        self.acted: dict[str, int] = dict.fromkeys(POLICIES, 0)
        self._attempts = attempts
        self._backoff = backoff_s

    async def handle(self, decision: Mapping[str, Any]) -> Refusal | None:
        """Act on ``decision`` if it is a refusal of one of our channels' lines, once."""
        actions = self.actions.get(str(decision.get("channel")))
        if actions is None:
            return None
        refusal = refusal_from(decision, actions.channel, actions.account)
        if refusal is None or self.done.seen(refusal.decision_id):
            return None
        policy = self.policies[actions.channel]
        error = await self._act(actions, policy, refusal)
        if policy == "flag" or error is not None:
            self.view.add(refusal, policy, error)
        self.done.add(refusal.decision_id)
        self.acted[policy] += 1
        log.info(
            "refusal channel=%s order=%s line=%s sku=%s qty=%d reason=%s policy=%s%s",
            refusal.channel,
            refusal.order_id,
            refusal.line_id,
            refusal.sku,
            refusal.qty,
            refusal.reason,
            policy,
            "" if error is None else f" failed: {error}",
        )
        return refusal

    async def _act(self, actions: RefusalActions, policy: str, refusal: Refusal) -> str | None:
        """None once done; the last error when the channel kept failing (then the line is
        listed as an exception, so a human sees it)."""
        step = {"cancel": actions.cancel, "backorder": actions.backorder, "flag": actions.flag}
        error = ""
        for attempt in range(self._attempts):
            try:
                await step[policy](refusal)
                return None
            except (ThrottledError, UnavailableError) as exc:
                error = type(exc).__name__  # the class only: texts may carry request details
                wait = getattr(exc, "retry_after", None) or self._backoff * 2**attempt
                await asyncio.sleep(min(wait, 30.0))
            except Exception as exc:  # refused by the channel (4xx): retrying will not help
                log.warning(
                    "refusal channel=%s order=%s: %s refused by the channel: %s",
                    refusal.channel,
                    refusal.order_id,
                    policy,
                    type(exc).__name__,
                )
                return type(exc).__name__
        return error


__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "ExceptionsView",
    "Refusal",
    "RefusalActions",
    "RefusalHandler",
    "refusal_from",
]
