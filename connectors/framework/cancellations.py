"""Orders cancelled here are cancelled on their channel, once.

The order book writes each order's state to ``orders.state.v1``. A state whose transition
leads to ``cancelled`` for an order of a connector's channel (order id
``<channel>:<channel's id>``) is acted on unless the channel itself caused it: the
transition's ``by`` is the channel or its connector (``connector:<channel>``), or its
``event_id`` is one of the connector's own ids (``<channel>/<account>/…``). What is left is
an operator's cancel through the API, or the order book's own (an approval that expired).

Idempotent twice over: a cancellation seen before (the same order, after a redelivery or a
restart of the consumer) is skipped from memory, and every channel call is idempotent on the
channel (an order already cancelled there is success, ``already``).

Retries: throttles and outages are retried with the channel's ``Retry-After`` or an
exponential backoff (``attempts`` tries); a channel that keeps failing, or refuses (the
order does not exist there, it already shipped), gives a dead letter on
``stock.deadletter.v1`` (reason ``cancel_failed``; the original is the order id, channel and
state version: no personal data) and a drift alert, so a person cancels it by hand. Logs
carry the order id, channel and outcome only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.framework import metrics, redact
from connectors.framework.dedupe import DedupeStore
from connectors.framework.types import ThrottledError, UnavailableError

log = logging.getLogger(__name__)

CANCELLED = "cancelled"
ALREADY = "already"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """One order to cancel on its channel, in the channel's own ids."""

    order_id: str  # "<channel>:<id>"
    channel: str
    channel_order_id: str  # the channel's id, e.g. "5001"
    version: int  # the order state's version
    reason: str | None  # why it was cancelled here (no personal data)

    def note(self) -> str:
        why = f": {self.reason[:200]}" if self.reason else ""
        return f"[stockflow] order cancelled in the order book{why}"


class ChannelCanceller(Protocol):
    """A channel's cancellation; idempotent on the channel."""

    channel: str
    account: str

    async def cancel_order(self, request: CancelRequest) -> str:
        """``cancelled`` when the channel took the cancellation, ``already`` when it had the
        order cancelled; raises ``ThrottledError``/``UnavailableError`` (retried) or anything
        else (refused: not retried)."""
        ...


def cancel_request(state: Mapping[str, Any], channel: str, account: str) -> CancelRequest | None:
    """The cancellation ``state`` asks of ``channel``, if any (see the module docstring)."""
    order_id = str(state.get("order_id") or "")
    if state.get("status") != CANCELLED or not order_id.startswith(f"{channel}:"):
        return None
    transition = state.get("transition") or {}
    if transition.get("to_status") != CANCELLED or transition.get("from_status") == CANCELLED:
        return None
    by = str(transition.get("by") or "")
    if by in (channel, f"connector:{channel}"):
        return None
    if str(transition.get("event_id") or "").startswith(f"{channel}/{account}/"):
        return None
    return CancelRequest(
        order_id=order_id,
        channel=channel,
        channel_order_id=order_id.removeprefix(f"{channel}:"),
        version=int(state.get("version") or 0),
        reason=transition.get("reason") or state.get("reason"),
    )


FailureSink = Callable[[CancelRequest, str], Awaitable[None]]
"""Called once for a cancellation that finally failed, with the error's class name."""


class CancelHandler:
    """Cancels on their channel the orders cancelled here, once each."""

    def __init__(
        self,
        cancellers: Mapping[str, ChannelCanceller],
        *,
        failed: FailureSink | None = None,
        attempts: int = 5,
        backoff_s: float = 1.0,
    ) -> None:
        self.cancellers = dict(cancellers)
        self.done = DedupeStore(max_keys=100_000, ttl_s=7 * 24 * 3600)
        self.outcomes: dict[str, int] = {CANCELLED: 0, ALREADY: 0, FAILED: 0}
        self._failed = failed
        self._attempts = attempts
        self._backoff = backoff_s

    async def handle(self, state: Mapping[str, Any]) -> str | None:
        """The outcome for a state that asks a cancellation; None when it asks none."""
        canceller = self.cancellers.get(str(state.get("channel")))
        if canceller is None:
            return None
        request = cancel_request(state, canceller.channel, canceller.account)
        if request is None or self.done.seen(request.order_id):
            return None
        outcome, error = await self._cancel(canceller, request)
        if outcome == FAILED and self._failed is not None:
            await self._failed(request, error)
        self.done.add(request.order_id)
        self.outcomes[outcome] += 1
        metrics.CANCELS.labels(request.channel, outcome).inc()
        log.info(
            "order cancel channel=%s order=%s version=%d outcome=%s%s",
            request.channel,
            request.order_id,
            request.version,
            outcome,
            f" error={error}" if error else "",
        )
        return outcome

    async def _cancel(self, canceller: ChannelCanceller, request: CancelRequest) -> tuple[str, str]:
        error = ""
        for attempt in range(self._attempts):
            try:
                return await canceller.cancel_order(request), ""
            except (ThrottledError, UnavailableError) as exc:
                error = type(exc).__name__  # the class only: texts may carry request details
                if attempt + 1 < self._attempts:
                    wait = exc.retry_after or self._backoff * 2**attempt
                    await asyncio.sleep(min(wait, 30.0))
            except Exception as exc:  # refused by the channel: retrying will not help
                return FAILED, f"{type(exc).__name__}: {redact.scrub(str(exc))[:300]}"
        return FAILED, error
