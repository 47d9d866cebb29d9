"""The purchasing service's order of a change, without Kafka: a publisher that records what
it was given or refuses like an unreachable broker stands in for the Kafka one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

from schemas.codec import single_object_codec
from streams.kernel.kafka_io import Publisher, PublishError
from streams.kernel.settings import Settings
from streams.kernel.topics import REPLENISHMENT_PROPOSALS, STOCK_EVENTS, TopicSpec
from streams.purchasing import lifecycle as lc
from streams.purchasing.service import PurchasingService
from streams.replenishment.model import ReplenishmentConfig
from tests.unit.test_purchasing_lifecycle import T, line, planned, sent_po


class Recorder:
    """Takes batches as Kafka would acknowledge them, or refuses them all."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.refuse = refuse
        self.batches: list[list[tuple[str, str, dict[str, Any]]]] = []

    async def send(self, records: Sequence[tuple[TopicSpec, str, dict[str, Any]]]) -> None:
        if self.refuse:
            raise PublishError("1 record(s) not acknowledged within 30 s")
        self.batches.append([(spec.name, key, record) for spec, key, record in records])


async def _unused(*_: Any, **__: Any) -> Any:
    raise AssertionError("not called")


def service_with(publisher: Recorder, *proposals: dict[str, Any]) -> PurchasingService:
    service = PurchasingService(
        cast(Settings, None),
        ReplenishmentConfig(),
        planner=_unused,
        sender=_unused,
        codec=single_object_codec(),
    )
    service._publisher = cast(Publisher, publisher)  # the seam under test
    for proposal in proposals:
        service._take(proposal)  # as read from the topic at start
    return service


def test_a_change_kafka_does_not_acknowledge_changes_nothing() -> None:
    """Given a proposal at version 1 and a broker that does not acknowledge, when a buyer
    edits a line, then the edit fails with PublishError and the service still has version 1
    with the planner's quantity; when Kafka is back, the same edit makes version 2."""
    v1 = lc.new_proposal(planned(), proposal_id="PO-1", at=T)
    refusing = Recorder(refuse=True)
    service = service_with(refusing, v1)
    with pytest.raises(PublishError):
        asyncio.run(service.edit_line("PO-1", "chair", 36, by="bob"))
    assert service.get("PO-1") == v1
    refusing.refuse = False
    v2 = asyncio.run(service.edit_line("PO-1", "chair", 36, by="bob"))
    assert (v2["version"], service.get("PO-1")) == (2, v2)
    [[(topic, key, record)]] = refusing.batches
    assert (topic, key, record["version"]) == (REPLENISHMENT_PROPOSALS.name, "PO-1", 2)


def test_cancelling_publishes_the_cancellations_before_the_cancelled_version() -> None:
    """Given a sent order of 24 chairs with 10 received, when the rest is cancelled, then one
    batch carries first the purchase_cancelled event of 14 chairs (keyed by SKU), then the
    cancelled version; a version that does not follow the known one is refused."""
    po = lc.receive(sent_po(line("chair", 24)), "chair", 10, ref="r", at=T)
    assert po is not None
    recorder = Recorder()
    service = service_with(recorder, po)
    asyncio.run(service.cancel_rest("PO-1", by="ann"))
    [batch] = recorder.batches
    assert [(topic, key) for topic, key, _ in batch] == [
        (STOCK_EVENTS.name, "chair"),
        (REPLENISHMENT_PROPOSALS.name, "PO-1"),
    ]
    assert (batch[0][2]["type"], batch[0][2]["qty"]) == ("purchase_cancelled", 14)
    assert batch[1][2]["status"] == "cancelled"

    async def skip_a_version() -> None:
        current = service.get("PO-1")
        assert current is not None
        jump = lc.next_version(
            lc.next_version(current, by="x", at=T, note=None), by="x", at=T, note=None
        )
        async with service._lock:  # the rule the lock guards
            await service._put([jump])

    with pytest.raises(RuntimeError, match="versions go up by one"):
        asyncio.run(skip_a_version())


def test_a_newer_version_read_from_the_topic_wins_and_an_older_one_is_ignored() -> None:
    """Given version 3 known, when version 2 and then version 4 are read, then 4 is kept."""
    v1 = lc.new_proposal(planned(), proposal_id="PO-1", at=T)
    v2 = lc.edit_line(v1, "chair", 30, by="b", at=T)
    v3 = lc.edit_line(v2, "chair", 36, by="b", at=T)
    v4 = lc.edit_line(v3, "chair", 42, by="b", at=T)
    service = service_with(Recorder(), v3)
    service._take(v2)
    assert service.get("PO-1") == v3
    service._take(v4)
    assert service.get("PO-1") == v4
