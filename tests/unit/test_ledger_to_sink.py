"""What the ledger applies, the sink can store: the contract's bounds fit ClickHouse's."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import single_object_codec
from schemas.events import EVENT_TYPES, MAX_QTY, MAX_TEXT, MAX_TIME_MS, MIN_TIME_MS, stock_event
from streams.kernel.topics import STOCK_ALERTS, STOCK_DECISIONS, STOCK_LEVELS, STOCK_MOVEMENTS
from streams.ledger import DEFAULT_CONFIG, InvalidEvent, SkuState, apply
from streams.sink.rows import to_rows

CODEC = single_object_codec()
_NOW = st.integers(MIN_TIME_MS, MAX_TIME_MS - 1)
# times a producer may send, in the contract's range or not (the ledger refuses those)
_TIMES = st.one_of(
    st.sampled_from([0, MIN_TIME_MS - 1, MIN_TIME_MS, MAX_TIME_MS - 1, MAX_TIME_MS, 2**53 - 1]),
    st.integers(0, 2**53 - 1),
    _NOW,
)
_QTY = st.one_of(st.sampled_from([MAX_QTY, -MAX_QTY, 1, 0]), st.integers(-MAX_QTY, MAX_QTY))
_TEXT = st.sampled_from(["a", "b", "default", "é" * MAX_TEXT, "x" * MAX_TEXT])


@st.composite
def _events(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(sorted(EVENT_TYPES)))
        fields: dict[str, Any] = {
            "location": draw(_TEXT),
            "order_id": draw(st.sampled_from(["o1", "o2", "o" * MAX_TEXT])),
            "channel": draw(_TEXT),
            "reason": draw(_TEXT),
            "source_ref": draw(_TEXT),
        }
        if kind == "transfer":
            fields["to_location"] = draw(_TEXT)
        if draw(st.booleans()):
            fields["as_of"] = draw(_TIMES)
        if draw(st.booleans()):
            fields["expires_at"] = draw(_TIMES)
        out.append(
            stock_event(
                kind, "s" * MAX_TEXT, f"e{i}", draw(_TIMES), qty=draw(_QTY), source="t", **fields
            )
        )
    return out


@settings(max_examples=400)
@given(_events(), _NOW)
def test_every_record_the_ledger_emits_for_accepted_events_becomes_a_clickhouse_row(
    events: list[dict[str, Any]], now: int
) -> None:
    """Given any sequence of events the contract accepts, with times at both ends of
    2000..2100, quantities at +-max_qty and text at its longest, when the ledger applies them,
    then each movement, level, decision and alert it emits encodes in Avro and maps to
    ClickHouse rows without an error: the sink never dead-letters what the ledger applied."""
    state: SkuState | None = None
    for event in events:
        try:
            state, out = apply(state, event, DEFAULT_CONFIG, now)
        except InvalidEvent:
            continue
        records = [(STOCK_MOVEMENTS, m) for m in out.movements]
        records += [(STOCK_ALERTS, a) for a in out.alerts]
        if out.decision is not None:
            records.append((STOCK_DECISIONS, out.decision))
        if out.level is not None:
            records.append((STOCK_LEVELS, out.level))
        for spec, record in records:
            name, decoded = CODEC.decode(CODEC.encode(spec.value_schema, record))
            to_rows(name, decoded, 0, 0)
