"""The pure rules of notification (dedup and its clearing, quiet hours across midnight and
time zones, digest grouping, the backoff schedule) and the notifier's decisions over them,
with a recording transport in place of SMTP and webhooks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from streams.notifications.channels import SendError, with_retries
from streams.notifications.config import QuietHours, RetryPolicy, parse_notifications
from streams.notifications.core import (
    Dedup,
    backoff_delays,
    digest_due,
    group_digest,
    is_quiet,
    quiet_end,
    route,
)
from streams.notifications.notifier import Notifier

HOUR = 3_600_000


def ms(text: str, zone: str = "UTC") -> int:
    """Epoch ms of a local wall-clock time, e.g. ms("2026-11-30 23:30", "Europe/Paris")."""
    local = datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))
    return int(local.astimezone(UTC).timestamp() * 1000)


NOON = ms("2026-11-30 12:00")


def alert(kind: str, sku: str = "chair", location: str | None = "paris-wh", **more: Any) -> dict:
    at = more.pop("at", NOON)
    return {
        "alert_id": more.pop("alert_id", f"e-{kind}-{sku}-{location}-{at}"),
        "kind": kind,
        "sku": sku,
        "location": location,
        "message": f"{sku} {kind}",
        "at": at,
        **more,
    }


# -- dedup -----------------------------------------------------------------------------------


def test_one_low_stock_alert_is_told_until_back_in_stock_clears_it() -> None:
    """Given low_stock for chair at paris-wh, when it comes again, then it is a duplicate;
    when back_in_stock follows, then that is told, and the next low_stock is told again.
    Another location is its own key."""
    d = Dedup()
    seen = [
        d.observe(alert("low_stock")),
        d.observe(alert("low_stock", at=NOON + 1)),
        d.observe(alert("low_stock", location="lyon")),
        d.observe(alert("out_of_stock", at=NOON + 2)),
        d.observe(alert("back_in_stock", at=NOON + 3)),
        d.observe(alert("back_in_stock", at=NOON + 4)),
        d.observe(alert("low_stock", at=NOON + 5)),
    ]
    assert seen == [True, False, True, True, True, False, True]


def test_kinds_nothing_clears_are_told_again_after_the_dedup_window() -> None:
    """Given a discrepancy told at noon and a one-hour window, when the same discrepancy comes
    after 30 minutes, then it is a duplicate; after 61 minutes it is told again. A low_stock
    is not told again however long it stays (only back_in_stock clears it)."""
    d = Dedup(window_ms=HOUR)
    assert d.observe(alert("discrepancy"))
    assert not d.observe(alert("discrepancy", at=NOON + HOUR // 2))
    assert d.observe(alert("discrepancy", at=NOON + HOUR + 60_000))
    assert d.observe(alert("low_stock"))
    assert not d.observe(alert("low_stock", at=NOON + 100 * HOUR))


KINDS = st.sampled_from(["low_stock", "out_of_stock", "back_in_stock"])


@given(st.lists(KINDS, max_size=40))
def test_a_low_stock_is_told_again_only_after_a_back_in_stock(kinds: list[str]) -> None:
    """Given any sequence of low/out/back alerts for one SKU and location, when observed,
    then a low_stock is told exactly when no low_stock was told since the last back_in_stock
    (or ever), and likewise a back_in_stock exactly when low or out came since the last one."""
    d = Dedup()
    told_low_since_back = False
    stock_out_since_back = True  # nothing told yet: the first back_in_stock is news
    for i, kind in enumerate(kinds):
        news = d.observe(alert(kind, at=NOON + i))
        if kind == "low_stock":
            assert news == (not told_low_since_back)
            told_low_since_back = True
            stock_out_since_back = True
        elif kind == "back_in_stock":
            assert news == stock_out_since_back
            told_low_since_back = False
            stock_out_since_back = False
        else:
            stock_out_since_back = True


@given(st.lists(st.tuples(KINDS, st.sampled_from(["a", "b"])), max_size=30), st.data())
def test_replaying_the_alerts_rebuilds_the_same_dedup_state(
    items: list[tuple[str, str]], data: st.DataObject
) -> None:
    """Given any alerts, when a notifier stops after some of them and a new one replays those
    (as at a restart) and then takes the rest, then it decides exactly like one that never
    stopped."""
    alerts = [alert(k, sku=s, at=NOON + i) for i, (k, s) in enumerate(items)]
    cut = data.draw(st.integers(0, len(alerts)))
    whole = Dedup()
    expected = [whole.observe(a) for a in alerts]
    restarted = Dedup()
    for a in alerts[:cut]:
        restarted.observe(a)
    assert [restarted.observe(a) for a in alerts[cut:]] == expected[cut:]


# -- quiet hours -----------------------------------------------------------------------------

PARIS_NIGHT = QuietHours(time(22, 0), time(7, 0), "Europe/Paris")


def test_quiet_hours_span_midnight_in_the_recipients_time_zone() -> None:
    """Given quiet hours 22:00-07:00 in Paris, when asked at Paris times, then 22:00, 23:30 and
    06:59 are quiet, 07:00 and noon are not; at 23:30 they end at 07:00 Paris time the next
    morning."""
    paris = "Europe/Paris"
    assert is_quiet(PARIS_NIGHT, ms("2026-11-30 22:00", paris))
    assert is_quiet(PARIS_NIGHT, ms("2026-11-30 23:30", paris))
    assert is_quiet(PARIS_NIGHT, ms("2026-12-01 06:59", paris))
    assert not is_quiet(PARIS_NIGHT, ms("2026-12-01 07:00", paris))
    assert not is_quiet(PARIS_NIGHT, ms("2026-11-30 12:00", paris))
    assert quiet_end(PARIS_NIGHT, ms("2026-11-30 23:30", paris)) == ms("2026-12-01 07:00", paris)
    assert quiet_end(PARIS_NIGHT, ms("2026-12-01 03:00", paris)) == ms("2026-12-01 07:00", paris)


def test_the_same_instant_is_quiet_in_one_zone_and_not_in_another() -> None:
    """Given 23:00 UTC, when asked for quiet hours 22:00-07:00 in New York and in Tokyo, then
    it is 18:00 in New York (not quiet) and 08:00 in Tokyo (not quiet), while 03:00 UTC is
    22:00 in New York (quiet) and 12:00 in Tokyo (not)."""
    ny = QuietHours(time(22, 0), time(7, 0), "America/New_York")
    tokyo = QuietHours(time(22, 0), time(7, 0), "Asia/Tokyo")
    assert not is_quiet(ny, ms("2026-11-30 23:00")) and not is_quiet(tokyo, ms("2026-11-30 23:00"))
    assert is_quiet(ny, ms("2026-12-01 03:00")) and not is_quiet(tokyo, ms("2026-12-01 03:00"))
    assert quiet_end(ny, ms("2026-12-01 03:00")) == ms("2026-12-01 07:00", "America/New_York")


def test_quiet_hours_end_at_local_seven_across_a_daylight_saving_change() -> None:
    """Given Paris quiet hours and the night clocks go forward (29 March 2026), when asked at
    23:00 the evening before (UTC+1), then they end at 07:00 local summer time (05:00 UTC),
    eight hours later, not nine."""
    now = ms("2026-03-28 23:00", "Europe/Paris")
    end = quiet_end(PARIS_NIGHT, now)
    assert end == ms("2026-03-29 05:00")
    assert end - now == 7 * HOUR


@given(
    st.integers(ms("2026-01-01 00:00"), ms("2027-12-31 00:00")),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]),
)
def test_quiet_hours_always_end_within_a_day_at_a_time_that_is_not_quiet(
    now: int, start: time, end: time, zone: str
) -> None:
    """Given any instant and any quiet hours in any of five zones, when their next end is
    computed, then it is after now, at most a day (and a DST hour) later, and not quiet."""
    if start == end:
        return
    q = QuietHours(start, end, zone)
    stop = quiet_end(q, now)
    assert now < stop <= now + 25 * HOUR
    assert not is_quiet(q, stop)


# -- digests and retries ---------------------------------------------------------------------


def test_a_digest_groups_alerts_by_kind_most_urgent_first_each_alert_once() -> None:
    """Given digest items of three kinds, one repeated, when grouped, then out_of_stock
    (critical) comes before low_stock (warning) before back_in_stock (info), each group sorted
    by location and SKU, and the repeated alert is listed once."""
    items = [
        {**alert("low_stock", sku="desk"), "severity": "warning"},
        {**alert("back_in_stock", sku="lamp"), "severity": "info"},
        {**alert("out_of_stock", sku="chair"), "severity": "critical"},
        {**alert("low_stock", sku="chair", location="lyon"), "severity": "warning"},
        {**alert("low_stock", sku="desk"), "severity": "warning"},
    ]
    groups = group_digest(items)
    assert [k for k, _ in groups] == ["out_of_stock", "low_stock", "back_in_stock"]
    assert [(a["location"], a["sku"]) for a in groups[1][1]] == [
        ("lyon", "chair"),
        ("paris-wh", "desk"),
    ]


def test_a_digest_is_due_at_the_end_of_its_hour_or_after_quiet_hours() -> None:
    """Given a first digest item at 12:20 and hourly digests, when the due time is computed,
    then it is 13:00; for Paris quiet hours and an item at 21:40 UTC (22:40 Paris), it is
    07:00 Paris time."""
    assert digest_due(ms("2026-11-30 12:20"), HOUR) == ms("2026-11-30 13:00")
    assert digest_due(ms("2026-11-30 21:40"), HOUR, PARIS_NIGHT) == ms(
        "2026-12-01 07:00", "Europe/Paris"
    )


def test_the_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    """Given 6 attempts from 1 s capped at 10 s, when the schedule is computed, then the waits
    between attempts are 1, 2, 4, 8, 10."""
    assert backoff_delays(RetryPolicy(6, 1.0, 10.0)) == [1, 2, 4, 8, 10]


@given(st.integers(1, 12), st.floats(0.01, 30), st.floats(0.01, 600))
def test_the_backoff_schedule_has_a_wait_per_retry_never_shrinking_never_over_the_cap(
    attempts: int, base: float, cap: float
) -> None:
    """Given any policy, when the schedule is computed, then it has one wait per retry, each
    at least the previous one and none above the cap."""
    delays = backoff_delays(RetryPolicy(attempts, base, cap))
    assert len(delays) == attempts - 1
    assert all(a <= b for a, b in pairwise(delays))
    assert all(0 < d <= cap for d in delays)


def test_retries_stop_at_the_first_success_and_a_permanent_error_is_not_retried() -> None:
    """Given a send failing twice (retryable) then succeeding, when sent with retries, then it
    took 3 attempts and waited 1 s then 2 s; a permanent error stops at the first attempt."""
    waits: list[float] = []
    answers = [SendError("HTTP 503", retryable=True)] * 2 + [None]

    async def send() -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    async def sleep(s: float) -> None:
        waits.append(s)

    outcome = asyncio.run(with_retries(send, RetryPolicy(5, 1.0, 60.0), sleep=sleep))
    assert (outcome.ok, outcome.attempts, waits) == (True, 3, [1.0, 2.0])

    async def refused() -> None:
        raise SendError("HTTP 404", retryable=False)

    outcome = asyncio.run(with_retries(refused, RetryPolicy(5, 1.0, 60.0), sleep=sleep))
    assert (outcome.ok, outcome.attempts, outcome.error) == (False, 1, "HTTP 404")


# -- the notifier's decisions ----------------------------------------------------------------


class Recorder:
    """A transport that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.emails: list[tuple[str, str, str]] = []
        self.posts: list[tuple[str, dict[str, Any]]] = []

    async def email(self, to: str, subject: str, body: str) -> object:
        self.emails.append((to, subject, body))
        return "id"

    async def webhook(self, url: str, payload: dict[str, Any]) -> object:
        self.posts.append((url, payload))
        return 200


CONFIG = {
    "recipients": [
        {"id": "ops", "email": "ops@example.com"},
        {
            "id": "night",
            "email": "night@example.com",
            "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris"},
        },
        {"id": "chat", "webhook_url": "http://127.0.0.1:1/hook", "slack": True},
        {"id": "page", "page": True},
        {"id": "buyers", "email": "buyers@example.com"},
    ],
    "rules": [
        {
            "name": "stock",
            "kinds": ["low_stock", "out_of_stock", "back_in_stock"],
            "recipients": ["ops", "night", "chat", "page"],
        },
        {
            "name": "paris-digest",
            "locations": ["paris-wh"],
            "recipients": ["buyers", "ops"],
            "mode": "digest",
        },
    ],
}


def test_routing_tells_each_recipient_once_by_the_first_rule_that_names_it() -> None:
    """Given two rules both naming ops, when a low_stock at paris-wh is routed, then ops is told
    by the first rule (immediately) and buyers by the digest rule; a drift at lyon reaches
    no one."""
    config = parse_notifications(CONFIG)
    routes = route(config, alert("low_stock"))
    assert [(r.recipient.id, r.rule.name, r.mode) for r in routes] == [
        ("ops", "stock", "immediate"),
        ("night", "stock", "immediate"),
        ("chat", "stock", "immediate"),
        ("page", "stock", "immediate"),
        ("buyers", "paris-digest", "digest"),
    ]
    assert route(config, alert("drift", location="lyon")) == []


def test_the_notifier_sends_holds_digests_and_suppresses_then_releases_when_due() -> None:
    """Given the rules above at 23:30 Paris time, when a low_stock arrives, then ops gets an
    email, chat a Slack-shaped post, page a delivered record, night is held (quiet hours),
    buyers' is digested; a second low_stock is suppressed for all. At 07:00 Paris night's
    email goes out; at the digest's due time buyers get one email. Nothing carries an address."""
    transport = Recorder()
    n = Notifier(parse_notifications(CONFIG), transport)
    now = ms("2026-11-30 23:30", "Europe/Paris")
    first = alert("low_stock", at=now - 1000)
    records = asyncio.run(n.handle(first, now))
    assert {r["recipient"]: r["status"] for r in records} == {
        "ops": "delivered",
        "chat": "delivered",
        "page": "delivered",
        "night": "held_quiet_hours",
        "buyers": "digested",
    }
    assert [to for to, _, _ in transport.emails] == ["ops@example.com"]
    assert transport.posts[0][1]["text"] == "Low stock: chair at paris-wh"
    assert all("@" not in str(v) for r in records for v in r.values())

    again = asyncio.run(n.handle(alert("low_stock", at=now), now + 1000))
    assert {r["status"] for r in again} == {"suppressed_duplicate"}
    assert len(transport.emails) == 1

    assert asyncio.run(n.tick(now + 60_000)) == []
    digest_at = n.digest_due["buyers"]
    morning = ms("2026-12-01 07:00", "Europe/Paris")
    released = asyncio.run(n.tick(max(morning, digest_at)))
    assert {(r["recipient"], r["status"], r["mode"]) for r in released} == {
        ("night", "delivered", "immediate"),
        ("buyers", "delivered", "digest"),
    }
    assert sorted(to for to, _, _ in transport.emails) == [
        "buyers@example.com",
        "night@example.com",
        "ops@example.com",
    ]
    assert n.held == {} and n.digests == {}


def test_a_notifier_rebuilt_from_its_records_does_not_send_an_alert_again() -> None:
    """Given a notifier that handled a low_stock (one email held, one digested), when a new
    notifier restores those records and replays the alert through dedup, then handling the
    same alert again (an uncommitted offset read again) sends and records nothing, and the
    held and digested deliveries are pending again and sent when due."""
    config = parse_notifications(CONFIG)
    now = ms("2026-11-30 23:30", "Europe/Paris")
    a = alert("low_stock", at=now - 1000)
    first = Notifier(config, Recorder())
    records = asyncio.run(first.handle(a, now))

    transport = Recorder()
    second = Notifier(config, transport)
    for r in records:
        second.restore(r)
    second.observe(a)
    assert asyncio.run(second.handle(a, now + 5000)) == []
    assert transport.emails == [] and transport.posts == []
    assert set(second.held) == {f"{a['alert_id']}>night"}
    assert set(second.digests) == {"buyers"}
    released = asyncio.run(second.tick(ms("2026-12-01 08:00", "Europe/Paris")))
    assert {r["recipient"] for r in released} == {"night", "buyers"}
    assert len(transport.emails) == 2


def test_the_group_waits_longer_than_a_batch_of_alerts_can_take_to_send() -> None:
    """Given the default retry policy (5 attempts of up to 10 s, 15 s of backoff) and a longer
    one, when the consumer's max.poll.interval is computed, then it is twice a batch's worst
    case (10 alerts x 65 s x 2 = 1300 s), and grows with the policy."""
    from streams.notifications.run import max_poll_interval_ms

    assert max_poll_interval_ms(parse_notifications(None)) == 1_300_000
    longer = parse_notifications({"retry": {"max_attempts": 8, "max_backoff": 120}})
    assert max_poll_interval_ms(longer) > 1_300_000


class Counting(Recorder):
    """Counts, per recipient address, how many times each alert id was sent."""

    def sent(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for to, _, body in self.emails:
            for line in body.splitlines():
                if line.startswith("Alert: "):  # an immediate email names its alert
                    key = (to, line.removeprefix("Alert: "))
                    counts[key] = counts.get(key, 0) + 1
                elif line.startswith("- "):  # a digest line: "... (severity, when): message"
                    key = (to, line.rsplit(": ", 1)[1])
                    counts[key] = counts.get(key, 0) + 1
        return counts


MIXED = {
    "recipients": [
        {"id": "now", "email": "now@example.com"},
        {
            "id": "night",
            "email": "night@example.com",
            "quiet_hours": {"start": "20:00", "end": "08:00", "timezone": "Asia/Tokyo"},
        },
        {
            "id": "late",
            "email": "late@example.com",
            "quiet_hours": {
                "start": "23:00",
                "end": "06:00",
                "timezone": "America/New_York",
                "then": "digest",
            },
        },
        {"id": "hourly", "email": "hourly@example.com"},
    ],
    "rules": [
        {"name": "people", "recipients": ["now", "night", "late"]},
        {"name": "digest", "recipients": ["hourly"], "mode": "digest"},
    ],
}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["low_stock", "out_of_stock", "back_in_stock", "drift"]),
            st.sampled_from(["chair", "desk"]),
            st.integers(0, 3 * HOUR),  # minutes apart, up to three hours
        ),
        max_size=25,
    ),
    st.integers(0, 23),
)
def test_every_news_alert_reaches_every_recipient_exactly_once_whatever_the_timing(
    steps: list[tuple[str, str, int]], start_hour: int
) -> None:
    """Given recipients told at once, held by quiet hours (Tokyo), digested in quiet hours
    (New York) and on an hourly digest, when any sequence of alerts arrives at any times with
    the timers ticking in between, and the clock finally runs two days on, then each alert
    that was news reaches each recipient exactly once (nothing lost, nothing doubled), each
    duplicate reaches no one, and nothing is left pending."""
    transport = Counting()
    n = Notifier(parse_notifications(MIXED), transport)
    now = ms("2026-11-30 00:00") + start_hour * HOUR
    news: list[str] = []
    for i, (kind, sku, gap) in enumerate(steps):
        now += gap
        a = alert(kind, sku=sku, at=now, alert_id=f"a{i}")
        a["message"] = f"a{i}"
        records = asyncio.run(n.handle(a, now))
        if records[0]["status"] != "suppressed_duplicate":
            news.append(f"a{i}")
        asyncio.run(n.tick(now))
    asyncio.run(n.tick(now + 48 * HOUR))
    addresses = ("now", "night", "late", "hourly")
    expected = {(f"{r}@example.com", aid): 1 for r in addresses for aid in news}
    assert transport.sent() == expected
    assert n.held == {} and n.digests == {} and n.digest_due == {}
