"""The filters of `stockflow deadletters`: times the operator writes, and what they match."""

from __future__ import annotations

import pytest

from streams.deadletters.reader import DeadLetter, FilterError, Filters, parse_since

NOW = 1_795_000_000_000


def test_since_takes_an_age_an_iso_date_or_an_iso_time() -> None:
    """Given ages and ISO dates/times (UTC when no offset), when parsed, then each gives the
    epoch milliseconds it names; nothing given means no lower bound."""
    assert parse_since("90s", now=NOW) == NOW - 90_000
    assert parse_since("30m", now=NOW) == NOW - 1_800_000
    assert parse_since("7d", now=NOW) == NOW - 7 * 86_400_000
    assert parse_since("2026-11-29") == 1_795_910_400_000
    assert parse_since("2026-11-29T01:00:00+01:00") == 1_795_910_400_000
    assert parse_since(None) is None and parse_since("") is None


@pytest.mark.parametrize("bad", ["yesterday", "7w", "-3d", "29/11/2026"])
def test_an_unreadable_since_says_which_forms_it_takes(bad: str) -> None:
    """Given a --since that is neither an age nor an ISO time, then FilterError names both."""
    with pytest.raises(FilterError, match=r"ISO date or time .* age \(90s, 30m, 6h, 7d\)"):
        parse_since(bad)


def test_filters_match_component_reason_topic_and_time() -> None:
    """Given a dead letter of the sink, then each filter keeps or drops it as it says."""
    letter = DeadLetter(
        0,
        1,
        {"component": "sink", "reason": "clickhouse_refused", "at": NOW, "topic": "t"},
    )
    assert Filters().match(letter)
    assert Filters(component="sink", reason="clickhouse_refused", topic="t").match(letter)
    assert not Filters(component="ledger").match(letter)
    assert not Filters(reason="undecodable").match(letter)
    assert Filters(since_ms=NOW).match(letter) and not Filters(since_ms=NOW + 1).match(letter)
    assert not Filters(topic="other").match(letter)
