"""The `notifications:` section of the configuration file: recipients, routing rules, quiet
hours, digests and retries, parsed into frozen dataclasses and checked at start.

Every error names the key path (``notifications.rules[2].recipients[0]``) and what is
expected; unknown keys are refused, so a typo never silently drops a rule. Recipients'
addresses live here only: records and tables carry recipient ids.

SKU categories (for rules matching ``categories``) come from ``notifications.categories``
(``sku: category`` or ``category: [sku, ...]``), else from the raw ``replenishment.categories``
of the same file, read the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

SEVERITIES = ("info", "warning", "critical")  # ordered, least urgent first
# What each alert kind is, unless `notifications.severities` says otherwise.
DEFAULT_SEVERITY: dict[str, str] = {
    "out_of_stock": "critical",
    "oversell_attempt": "critical",
    "low_stock": "warning",
    "discrepancy": "warning",
    "drift": "warning",
    "po_late": "warning",
    "short_pick": "warning",
    "delivery_exception": "warning",
    "preorder_at_risk": "warning",
    "pickup_failed": "warning",
    "back_in_stock": "info",
    "other": "info",
}
KINDS = tuple(DEFAULT_SEVERITY)
MODES = ("immediate", "digest")
QUIET_THEN = ("hold", "digest")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")


class NotificationsConfigError(ValueError):
    """The `notifications:` section is wrong; the message names the key path and the fix."""


@dataclass(frozen=True, slots=True)
class QuietHours:
    """No immediate sends between ``start`` and ``end`` local time in ``timezone`` (``end``
    before ``start``: across midnight). ``then``: ``hold`` sends them when the quiet hours
    end; ``digest`` adds them to the recipient's next digest."""

    start: time
    end: time
    timezone: str
    then: str = "hold"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who is told and how: exactly one of ``email``, ``webhook_url`` or ``page``."""

    id: str
    channel: str  # email | webhook | page
    email: str | None = None
    webhook_url: str | None = None
    slack: bool = False  # webhook body {"text": ..., "blocks": [...]} (Slack-compatible)
    quiet_hours: QuietHours | None = None

    def __repr__(self) -> str:  # never print an address
        return f"Recipient(id={self.id!r}, channel={self.channel!r})"


@dataclass(frozen=True, slots=True)
class Rule:
    """Alerts matching every given criterion (None: any) go to ``recipients``."""

    name: str
    recipients: tuple[str, ...]
    kinds: frozenset[str] | None = None
    locations: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    skus: frozenset[str] | None = None
    min_severity: str = "info"
    mode: str = "immediate"
    quiet_hours: QuietHours | None = None  # wins over the recipient's


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts of one send and the waits between them: base, 2 x base, 4 x base, ... capped
    at ``max_backoff`` seconds."""

    max_attempts: int = 5
    base_backoff: float = 1.0
    max_backoff: float = 60.0


@dataclass(frozen=True, slots=True)
class NotificationsConfig:
    recipients: dict[str, Recipient] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    categories: dict[str, str] = field(default_factory=dict)  # sku -> category
    severities: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    digest_interval_s: float = 3600.0
    # kinds no later alert clears (discrepancy, oversell_attempt, drift, ...) are told again
    # after this long; low/out of stock and back in stock wait for their clearing alert
    dedup_window_s: float = 86400.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def severity(self, kind: str) -> str:
        return self.severities.get(kind, "info")


# -- parsing ---------------------------------------------------------------------------------


def _fail(path: str, message: str) -> NotificationsConfigError:
    return NotificationsConfigError(f"{path}: {message}")


def _mapping(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected a mapping, got {type(value).__name__}")
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise _fail(
            f"{path}.{unknown[0]}", f"unknown key; known keys: {', '.join(sorted(allowed))}"
        )
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _id(value: Any, path: str) -> str:
    text = _str(value, path)
    if not ID_PATTERN.match(text):
        raise _fail(path, f"{text!r} is not an id (letters, digits, _ . @ + -; at most 64)")
    return text


def _names(value: Any, path: str, known: tuple[str, ...] | None = None) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _fail(path, f"expected a name or a non-empty list of names, got {value!r}")
    names = [_str(v, f"{path}[{i}]") for i, v in enumerate(items)]
    if known is not None:
        for i, name in enumerate(names):
            if name not in known:
                raise _fail(f"{path}[{i}]", f"{name!r} is not one of {', '.join(known)}")
    return frozenset(names)


def _positive(value: Any, path: str, *, integer: bool = False) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or value <= 0:
        kind = "a positive whole number" if integer else "a positive number"
        raise _fail(path, f"expected {kind}, got {value!r}")
    return float(value)


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> str:
    text = _str(value, path)
    if text not in choices:
        raise _fail(path, f"{text!r} is not one of {', '.join(choices)}")
    return text


def _clock(value: Any, path: str) -> time:
    text = value if isinstance(value, str) else None
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text or "")
    if match is None:
        raise _fail(path, f"expected a local time HH:MM (quoted in YAML), got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def parse_quiet_hours(raw: Any, path: str) -> QuietHours:
    m = _mapping(raw, path, {"start", "end", "timezone", "then"})
    for key in ("start", "end", "timezone"):
        if key not in m:
            raise _fail(f"{path}.{key}", "missing (start, end: HH:MM; timezone: e.g. Europe/Paris)")
    start, end = _clock(m["start"], f"{path}.start"), _clock(m["end"], f"{path}.end")
    if start == end:
        raise _fail(path, "start and end are the same time: no quiet hours")
    zone = _str(m["timezone"], f"{path}.timezone")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"{path}.timezone", f"{zone!r} is no IANA time zone") from None
    then = _choice(m.get("then", "hold"), f"{path}.then", QUIET_THEN)
    return QuietHours(start, end, zone, then)


def _recipient(raw: Any, path: str) -> Recipient:
    m = _mapping(raw, path, {"id", "email", "webhook_url", "slack", "page", "quiet_hours"})
    if "id" not in m:
        raise _fail(f"{path}.id", "missing: every recipient needs an id")
    rid = _id(m["id"], f"{path}.id")
    page = m.get("page", False)
    if not isinstance(page, bool):
        raise _fail(f"{path}.page", f"expected true or false, got {page!r}")
    given = [k for k in ("email", "webhook_url") if m.get(k) is not None] + (
        ["page"] if page else []
    )
    if len(given) != 1:
        raise _fail(path, f"give exactly one of email, webhook_url, page: true (got {given})")
    quiet = (
        None
        if m.get("quiet_hours") is None
        else parse_quiet_hours(m["quiet_hours"], f"{path}.quiet_hours")
    )
    slack = m.get("slack", False)
    if not isinstance(slack, bool):
        raise _fail(f"{path}.slack", f"expected true or false, got {slack!r}")
    if slack and "webhook_url" not in given:
        raise _fail(f"{path}.slack", "only a webhook_url recipient takes slack: true")
    if "email" in given:
        email = _str(m["email"], f"{path}.email")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
            raise _fail(f"{path}.email", "not an email address")
        return Recipient(rid, "email", email=email, quiet_hours=quiet)
    if "webhook_url" in given:
        url = _str(m["webhook_url"], f"{path}.webhook_url")
        if not re.match(r"^https?://[^/\s]+", url):
            raise _fail(f"{path}.webhook_url", "expected an http:// or https:// URL")
        return Recipient(rid, "webhook", webhook_url=url, slack=slack, quiet_hours=quiet)
    return Recipient(rid, "page", quiet_hours=quiet)


def _rule(raw: Any, path: str, recipients: Mapping[str, Recipient], kinds: tuple[str, ...]) -> Rule:
    keys = {"name", "kinds", "locations", "categories", "skus", "min_severity", "recipients"}
    m = _mapping(raw, path, keys | {"mode", "quiet_hours"})
    if "name" not in m:
        raise _fail(f"{path}.name", "missing: every rule needs a name (it is recorded)")
    if "recipients" not in m:
        raise _fail(f"{path}.recipients", "missing: the recipient ids this rule tells")
    names = m["recipients"]
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names:
        raise _fail(f"{path}.recipients", "expected a non-empty list of recipient ids")
    for i, rid in enumerate(names):
        if rid not in recipients:
            raise _fail(
                f"{path}.recipients[{i}]",
                f"{rid!r} is no recipient id; known: {', '.join(sorted(recipients)) or 'none'}",
            )

    def opt(key: str, known: tuple[str, ...] | None = None) -> frozenset[str] | None:
        return None if m.get(key) is None else _names(m[key], f"{path}.{key}", known)

    quiet = m.get("quiet_hours")
    return Rule(
        name=_id(m["name"], f"{path}.name"),
        recipients=tuple(dict.fromkeys(names)),
        kinds=opt("kinds", kinds),
        locations=opt("locations"),
        categories=opt("categories"),
        skus=opt("skus"),
        min_severity=_choice(m.get("min_severity", "info"), f"{path}.min_severity", SEVERITIES),
        mode=_choice(m.get("mode", "immediate"), f"{path}.mode", MODES),
        quiet_hours=None if quiet is None else parse_quiet_hours(quiet, f"{path}.quiet_hours"),
    )


def _categories(raw: Any, path: str) -> dict[str, str]:
    """``sku: category`` pairs, or ``category: [sku, ...]`` lists, as sku -> category."""
    if not isinstance(raw, Mapping):
        raise _fail(path, f"expected a mapping, got {type(raw).__name__}")
    out: dict[str, str] = {}
    for key, value in raw.items():
        name = _str(key, path)
        if isinstance(value, list):
            for i, sku in enumerate(value):
                out[_str(sku, f"{path}.{name}[{i}]")] = name
        else:
            out[name] = _str(value, f"{path}.{name}")
    return out


def parse_notifications(raw: Any, *, replenishment: Any = None) -> NotificationsConfig:
    """The configuration from the `notifications:` value (None or missing: nobody is told).
    ``replenishment`` is the raw `replenishment:` value of the same file, for its categories."""
    if raw is None:
        return NotificationsConfig()
    top = {"recipients", "rules", "categories", "severities", "digest_interval"}
    m = _mapping(raw, "notifications", top | {"dedup_window", "retry"})
    raw_recipients = m.get("recipients") or []
    if not isinstance(raw_recipients, list):
        raise _fail("notifications.recipients", "expected a list of recipients")
    recipients: dict[str, Recipient] = {}
    for i, item in enumerate(raw_recipients):
        r = _recipient(item, f"notifications.recipients[{i}]")
        if r.id in recipients:
            raise _fail(f"notifications.recipients[{i}].id", f"{r.id!r} is given twice")
        recipients[r.id] = r

    severities = dict(DEFAULT_SEVERITY)
    if m.get("severities") is not None:
        sev = _mapping(m["severities"], "notifications.severities", set(KINDS))
        for kind, level in sev.items():
            severities[kind] = _choice(level, f"notifications.severities.{kind}", SEVERITIES)

    raw_rules = m.get("rules") or []
    if not isinstance(raw_rules, list):
        raise _fail("notifications.rules", "expected a list of rules")
    rules = tuple(
        _rule(item, f"notifications.rules[{i}]", recipients, KINDS)
        for i, item in enumerate(raw_rules)
    )
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise _fail(f"notifications.rules[{i}].name", f"{rule.name!r} is given twice")
        seen.add(rule.name)

    if m.get("categories") is not None:
        categories = _categories(m["categories"], "notifications.categories")
    elif isinstance(replenishment, Mapping) and replenishment.get("categories") is not None:
        categories = _categories(replenishment["categories"], "replenishment.categories")
    else:
        categories = {}
    if any(rule.categories for rule in rules) and not categories:
        raise _fail(
            "notifications.categories",
            "a rule matches categories but no SKU has one: give notifications.categories"
            " (sku: category) or replenishment.categories",
        )

    retry = RetryPolicy()
    if m.get("retry") is not None:
        rm = _mapping(
            m["retry"], "notifications.retry", {"max_attempts", "base_backoff", "max_backoff"}
        )
        path = "notifications.retry"
        retry = RetryPolicy(
            max_attempts=int(
                _positive(rm.get("max_attempts", 5), f"{path}.max_attempts", integer=True)
            ),
            base_backoff=_positive(rm.get("base_backoff", 1.0), f"{path}.base_backoff"),
            max_backoff=_positive(rm.get("max_backoff", 60.0), f"{path}.max_backoff"),
        )
    return NotificationsConfig(
        recipients=recipients,
        rules=rules,
        categories=categories,
        severities=severities,
        digest_interval_s=_positive(
            m.get("digest_interval", 3600), "notifications.digest_interval"
        ),
        dedup_window_s=_positive(m.get("dedup_window", 86400), "notifications.dedup_window"),
        retry=retry,
    )


def load_notifications(path: str | Path) -> NotificationsConfig:
    """The `notifications:` section of the YAML file at ``path`` (STOCKFLOW_CONFIG)."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise NotificationsConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise NotificationsConfigError(f"{path}: not valid YAML: {exc}") from None
    if doc is None:
        return NotificationsConfig()
    if not isinstance(doc, Mapping):
        raise NotificationsConfigError(f"{path}: the top level must be a mapping")
    return parse_notifications(doc.get("notifications"), replenishment=doc.get("replenishment"))
