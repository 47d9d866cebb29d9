"""``stock.decisions.v1`` → the acceptance gate and the refusal policies: the ledger's
answers reach the channel. A line of a marketplace order awaiting acceptance is the gate's
(it accepts or refuses the whole order); any other refusal goes to the channel's policy.

Read as a consumer group (:class:`~connectors.framework.feed.TopicFeed`: offsets counted
once the :class:`RefusalHandler` acted, a first start at the topic's end).
"""

from __future__ import annotations

from typing import Any

from connectors.framework.acceptance import AcceptanceGate
from connectors.framework.feed import TopicFeed
from connectors.framework.kafka import KafkaPublisher
from connectors.framework.refusals import RefusalHandler
from schemas.codec import Codec
from streams.kernel import topics
from streams.kernel.settings import Settings


class DecisionsSource(TopicFeed):
    """``stock.decisions.v1``: each refusal to the :class:`RefusalHandler`."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        handler: RefusalHandler,
        *,
        group_id: str,
        commit_every_s: float = 5.0,
        dead_letters: KafkaPublisher | None = None,
        gate: AcceptanceGate | None = None,
    ) -> None:
        async def refused(decision: dict[str, Any]) -> None:
            if gate is not None and await gate.on_decision(decision):
                return
            if decision.get("outcome") == "rejected":
                await handler.handle(decision)

        super().__init__(
            settings,
            codec,
            topics.STOCK_DECISIONS,
            "decisions",
            refused,
            group_id=group_id,
            commit_every_s=commit_every_s,
            dead_letters=dead_letters,
        )
