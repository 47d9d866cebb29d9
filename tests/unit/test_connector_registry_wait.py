"""The connectors' levels source waits for the schema registry instead of dead-lettering."""

from __future__ import annotations

import asyncio
from typing import Any

from connectors.framework.decisions import DecisionsSource
from connectors.framework.kafka import LevelsSource
from schemas.codec import CodecError
from streams.kernel.settings import Settings


class FlakyRegistryCodec:
    """Refuses the first ``failures`` decodes as the registry codec does when it cannot reach
    the registry, then decodes."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        self.calls += 1
        if self.calls <= self.failures:
            raise CodecError("registry_unavailable", "schema registry at http://r unreachable")
        return "stockflow.v1.StockLevel", {"sku": "chair", "version": 1}

    def encode(self, schema: str, record: dict[str, Any]) -> bytes:
        raise AssertionError("nothing may be dead-lettered")


class Message:
    def value(self) -> bytes:
        return b"\x00\x00\x00\x00\x01body"

    def key(self) -> bytes:
        return b"chair"

    def topic(self) -> str:
        return "stock.levels.v1"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7


def test_a_level_is_decoded_after_the_registry_answers_again_and_never_dead_lettered() -> None:
    """Given a schema registry that does not answer the first two times, when the levels
    source decodes a record, then it waits and tries again, returns the level, and no dead
    letter is encoded."""
    codec = FlakyRegistryCodec(failures=2)
    source = LevelsSource(
        Settings(),
        codec,  # type: ignore[arg-type]
        engine=None,  # type: ignore[arg-type]
        group_id="unit-registry-wait",
        dead_letters=object(),  # type: ignore[arg-type]
    )
    try:
        level = asyncio.run(source._decode(Message()))  # type: ignore[arg-type]
    finally:
        source.close()
    assert level == {"sku": "chair", "version": 1}
    assert codec.calls == 3


def test_a_decision_is_decoded_after_the_registry_answers_again_and_never_dead_lettered() -> None:
    """Given a schema registry that does not answer the first time, when the decisions source
    (refusals to the channels) decodes a record, then it waits and tries again, returns the
    decision, and no dead letter is encoded: a refusal is not lost to a registry outage."""
    codec = FlakyRegistryCodec(failures=1)
    source = DecisionsSource(
        Settings(),
        codec,  # type: ignore[arg-type]
        handler=None,  # type: ignore[arg-type]
        group_id="unit-registry-wait-decisions",
        dead_letters=object(),  # type: ignore[arg-type]
    )
    try:
        decision = asyncio.run(source._decoder.decode(Message()))  # type: ignore[arg-type]
    finally:
        source.close()
    assert decision == {"sku": "chair", "version": 1}
    assert codec.calls == 2
