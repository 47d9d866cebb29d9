"""The pure rules of alert notification: routing, dedup, quiet hours, digests, retry waits.

Plain functions and small classes over plain data and epoch milliseconds: no clock, no
network, no Kafka. The notifier (streams.notifications.notifier) feeds them alerts and the
time, and does what they decide.

Dedup: one notification per SKU x kind x location until it clears. ``back_in_stock`` clears
``low_stock`` and ``out_of_stock`` of its SKU and location; either of those clears
``back_in_stock``. Kinds nothing clears (discrepancy, oversell attempt, drift, ...) are told
again once ``dedup_window`` has passed since they were last told. The state is a function of
the alerts alone (in their order, with their own ``at`` times), so replaying the same alerts
rebuilds the same state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.notifications.config import (
    SEVERITIES,
    NotificationsConfig,
    QuietHours,
    Recipient,
    RetryPolicy,
    Rule,
)

Alert = Mapping[str, Any]

CLEARS: dict[str, tuple[str, ...]] = {
    "back_in_stock": ("low_stock", "out_of_stock"),
    "low_stock": ("back_in_stock",),
    "out_of_stock": ("back_in_stock",),
}
CLEARED_BY_ALERT = frozenset(k for kinds in CLEARS.values() for k in kinds)


def delivery_id(alert_id: str, recipient: str) -> str:
    """The id of every record about one alert and one recipient (a redelivered alert gets the
    same id, so a delivery already recorded is recognised)."""
    return f"{alert_id}>{recipient}"


# -- routing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    rule: Rule
    recipient: Recipient
    severity: str

    @property
    def quiet_hours(self) -> QuietHours | None:
        """The rule's quiet hours win over the recipient's; the page has none."""
        if self.recipient.channel == "page":
            return None
        return self.rule.quiet_hours or self.recipient.quiet_hours

    @property
    def mode(self) -> str:
        return "immediate" if self.recipient.channel == "page" else self.rule.mode


def severity_rank(level: str) -> int:
    return SEVERITIES.index(level) if level in SEVERITIES else 0


def matches(rule: Rule, alert: Alert, config: NotificationsConfig) -> bool:
    kind, sku, location = alert.get("kind"), alert.get("sku"), alert.get("location")
    if rule.kinds is not None and kind not in rule.kinds:
        return False
    if rule.locations is not None and location not in rule.locations:
        return False
    if rule.skus is not None and sku not in rule.skus:
        return False
    if rule.categories is not None and config.categories.get(str(sku)) not in rule.categories:
        return False
    severity = config.severity(str(kind))
    return severity_rank(severity) >= severity_rank(rule.min_severity)


def route(config: NotificationsConfig, alert: Alert) -> list[Route]:
    """Every recipient the alert goes to, once each: rules in order, and a recipient named
    by several matching rules is told by the first."""
    severity = config.severity(str(alert.get("kind")))
    routes: dict[str, Route] = {}
    for rule in config.rules:
        if matches(rule, alert, config):
            for rid in rule.recipients:
                routes.setdefault(rid, Route(rule, config.recipients[rid], severity))
    return list(routes.values())


# -- dedup -----------------------------------------------------------------------------------


@dataclass
class Dedup:
    """Which (sku, kind, location) were told and not cleared since, with when (alert ms)."""

    window_ms: int = 86_400_000
    open: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @staticmethod
    def key(alert: Alert, kind: str | None = None) -> tuple[str, str, str]:
        return (str(alert.get("sku")), kind or str(alert.get("kind")), alert.get("location") or "")

    def observe(self, alert: Alert) -> bool:
        """Take one alert in; True if it is news (tell people), False if a duplicate."""
        kind, at = str(alert.get("kind")), int(alert.get("at") or 0)
        for cleared in CLEARS.get(kind, ()):
            self.open.pop(self.key(alert, cleared), None)
        key = self.key(alert)
        since = self.open.get(key)
        if since is not None:
            expires = kind not in CLEARED_BY_ALERT and at - since >= self.window_ms
            if not expires:
                return False
        self.open[key] = at
        return True


# -- quiet hours -----------------------------------------------------------------------------


def _local(q: QuietHours, now_ms: int) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(q.zone)


def is_quiet(q: QuietHours, now_ms: int) -> bool:
    """Whether ``now`` falls in the quiet hours (start inclusive, end exclusive, local time;
    start after end spans midnight)."""
    t = _local(q, now_ms).time().replace(tzinfo=None)
    if q.start < q.end:
        return q.start <= t < q.end
    return t >= q.start or t < q.end


def quiet_end(q: QuietHours, now_ms: int) -> int:
    """The first end of the quiet hours after ``now`` (epoch ms): the local ``end`` time of
    today or tomorrow, whichever comes next, in the zone's own offset that day (DST)."""
    local = _local(q, now_ms)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        end = datetime.combine(day, q.end, tzinfo=q.zone)
        end_ms = int(end.astimezone(UTC).timestamp() * 1000)
        if end_ms > now_ms:
            return end_ms
    raise AssertionError("unreachable: an end time within three days")


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one routed alert now: ``send`` it, ``hold`` it until ``due_ms``, or
    add it to the ``digest`` (sent at ``due_ms`` with the others)."""

    action: str
    due_ms: int


def plan(route_: Route, now_ms: int, interval_ms: int, digest_due_ms: int | None = None) -> Plan:
    """Immediate routes send now unless quiet hours hold or digest them; digest routes join
    the recipient's open digest (due at ``digest_due_ms``) or start one."""
    quiet = route_.quiet_hours
    if route_.mode == "digest" or (
        quiet is not None and is_quiet(quiet, now_ms) and quiet.then == "digest"
    ):
        due = digest_due_ms if digest_due_ms is not None else digest_due(now_ms, interval_ms, quiet)
        return Plan("digest", due)
    if quiet is not None and is_quiet(quiet, now_ms):
        return Plan("hold", quiet_end(quiet, now_ms))
    return Plan("send", now_ms)


def digest_due(first_ms: int, interval_ms: int, quiet: QuietHours | None = None) -> int:
    """When a digest started at ``first_ms`` is sent: the end of its interval (intervals are
    aligned on the epoch, so hourly digests go out on the hour), or the end of the quiet hours
    if it falls in them."""
    due = (first_ms // interval_ms + 1) * interval_ms
    if quiet is not None and is_quiet(quiet, due):
        return quiet_end(quiet, due)
    return due


# -- digests ---------------------------------------------------------------------------------


def group_digest(items: Iterable[Alert]) -> list[tuple[str, list[Alert]]]:
    """A digest's alerts grouped by kind, the most urgent kinds first, then by location and
    SKU; an alert listed twice (same alert_id) once."""
    seen: set[str] = set()
    groups: dict[str, list[Alert]] = {}
    for alert in items:
        aid = str(alert.get("alert_id"))
        if aid in seen:
            continue
        seen.add(aid)
        groups.setdefault(str(alert.get("kind")), []).append(alert)
    order = sorted(groups, key=lambda k: (-severity_rank(str(_severity_of(groups[k]))), k))
    return [
        (
            kind,
            sorted(groups[kind], key=lambda a: (a.get("location") or "", str(a.get("sku")))),
        )
        for kind in order
    ]


def _severity_of(alerts: list[Alert]) -> str:
    return str(alerts[0].get("severity") or "info")


# -- retries ---------------------------------------------------------------------------------


def backoff_delays(policy: RetryPolicy) -> list[float]:
    """The waits (seconds) before attempts 2..max_attempts: base, 2 x base, 4 x base, ...,
    each capped at ``max_backoff``."""
    return [
        min(policy.max_backoff, policy.base_backoff * 2**n) for n in range(policy.max_attempts - 1)
    ]
