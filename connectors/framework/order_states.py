"""``orders.state.v1`` → :class:`CancelHandler`: orders cancelled here reach their channel;
and the acceptance gate learns there what the order book did with a marketplace order it
awaits (``orders: book``; :meth:`AcceptanceGate.on_state`).

Read as a consumer group (``<consumer_group>-orders``, a
:class:`~connectors.framework.feed.TopicFeed`: offsets counted once the handler acted or
the failure was dead-lettered, a first start at the topic's end).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from connectors.framework import metrics
from connectors.framework.acceptance import AcceptanceGate
from connectors.framework.cancellations import CancelHandler, CancelRequest
from connectors.framework.feed import TopicFeed
from connectors.framework.kafka import KafkaPublisher
from schemas.codec import Codec
from schemas.times import now_ms
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter
from streams.kernel.settings import Settings

log = logging.getLogger(__name__)


class CancelFailures:
    """A cancellation the channel did not take: a dead letter (order id, channel, state
    version; no personal data) and a ``drift`` alert saying to cancel it by hand."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, request: CancelRequest, error: str) -> None:
        key = request.order_id.encode()
        letter = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{request.channel}",
            reason="cancel_failed",
            error=error,
            original=orjson.dumps(
                {
                    "order_id": request.order_id,
                    "channel": request.channel,
                    "version": request.version,
                    "status": "cancelled",
                }
            ),
            topic=topics.ORDERS_STATE.name,
            key=key,
        )
        alert = {
            "alert_id": f"cancel:{request.order_id}:{request.version}",
            "kind": "drift",
            "sku": "",
            "location": None,
            "channel": request.channel,
            "value": 0,
            "threshold": 0,
            "message": f"order {request.order_id} was cancelled here but {request.channel} did "
            f"not cancel it ({error.split(':', 1)[0]}); cancel it on the channel by hand",
            "event_id": None,
            "at": now_ms(),
        }
        try:
            await self._publisher.produce(
                topics.STOCK_DEADLETTER.name,
                [(key, self._codec.encode(topics.STOCK_DEADLETTER.value_schema, letter))],
            )
            await self._publisher.produce(
                topics.STOCK_ALERTS.name,
                [(key, self._codec.encode(topics.STOCK_ALERTS.value_schema, alert))],
            )
        except Exception as exc:  # the failure is logged and counted whatever happens here
            log.warning("order cancel %s: dead letter not published: %s", request.order_id, exc)
            return
        metrics.ALERTS.labels(request.channel, "drift").inc()


class OrderStatesSource(TopicFeed):
    """``orders.state.v1``: each state to the acceptance gate (an order it awaits), else to
    the :class:`CancelHandler`."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        handler: CancelHandler,
        *,
        group_id: str,
        commit_every_s: float = 5.0,
        dead_letters: KafkaPublisher | None = None,
        gate: AcceptanceGate | None = None,
    ) -> None:
        self._gate = gate
        self._cancels = handler
        super().__init__(
            settings,
            codec,
            topics.ORDERS_STATE,
            "order states",
            self._state,
            group_id=group_id,
            commit_every_s=commit_every_s,
            dead_letters=dead_letters,
        )

    async def _state(self, state: Mapping[str, Any]) -> object:
        if self._gate is not None and await self._gate.on_state(state):
            return None  # an order awaiting acceptance: the gate answers the marketplace
        return await self._cancels.handle(state)
