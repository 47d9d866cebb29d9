"""The bench's own scratch topic (the raw loop's output); every other topic is the registry's."""

from __future__ import annotations

from streams.kernel.topics import TopicSpec, Writer

RAW_OUT = TopicSpec(
    name="stockflow.bench.raw-out.v1",
    key="sku",
    value_schema="stockflow.v1.StockEvent",
    cleanup_policy="delete",
    writer=Writer.ANY,
    doc="Output of the bench's raw confluent-kafka loop: a copy of stock events, nothing reads it.",
)
