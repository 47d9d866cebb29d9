"""What a notification says: email subject and body, webhook JSON, Slack-compatible payload.

Pure functions of the delivery records (streams.notifications.records): one record for an
immediate notification, several for a digest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from streams.notifications.core import group_digest

Item = Mapping[str, Any]
TITLES = {
    "out_of_stock": "Out of stock",
    "low_stock": "Low stock",
    "back_in_stock": "Back in stock",
    "discrepancy": "Stock discrepancy",
    "oversell_attempt": "Oversell attempt",
    "drift": "Channel drift",
    "po_late": "Purchase order late",
    "short_pick": "Short pick",
    "delivery_exception": "Delivery exception",
    "preorder_at_risk": "Pre-orders at risk",
    "pickup_failed": "Carrier pickup not booked",
}


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def title(item: Item) -> str:
    kind = str(item["kind"])
    where = f" at {item['location']}" if item.get("location") else ""
    return f"{TITLES.get(kind, kind.replace('_', ' ').capitalize())}: {item['sku']}{where}"


def line(item: Item) -> str:
    when = _when(int(item["alert_at"]))
    return f"- {title(item)} ({item.get('severity', 'info')}, {when}): {item.get('message', '')}"


def email_subject(items: Sequence[Item]) -> str:
    if len(items) == 1:
        return f"[stockflow] {title(items[0])}"
    return f"[stockflow] Digest: {len(items)} alerts"


def email_body(items: Sequence[Item]) -> str:
    if len(items) == 1:
        item = items[0]
        return (
            f"{title(item)}\n\n{item.get('message', '')}\n\n"
            f"Severity: {item.get('severity', 'info')}\nRaised: {_when(int(item['alert_at']))}\n"
            f"Rule: {item['rule']}\nAlert: {item['alert_id']}\n"
        )
    parts = [f"{len(items)} alerts since the last digest.\n"]
    for kind, group in group_digest(items):
        parts.append(f"\n{TITLES.get(kind, kind)} ({len(group)})\n")
        parts.extend(line(item) + "\n" for item in group)
    return "".join(parts)


def webhook_json(items: Sequence[Item], *, slack: bool) -> dict[str, Any]:
    """The JSON body of a webhook: the alerts' fields, or a Slack-compatible message."""
    if slack:
        return slack_payload(items)
    fields = ("alert_id", "kind", "sku", "location", "severity", "message", "rule", "alert_at")
    alerts = [{k: item.get(k) for k in fields} for item in items]
    return {"digest": len(items) > 1, "alerts": alerts}


def slack_payload(items: Sequence[Item]) -> dict[str, Any]:
    """{"text": ..., "blocks": [...]}: a header and one section per alert (Block Kit)."""
    text = email_subject(items).removeprefix("[stockflow] ")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}
    ]
    for item in items[:45]:  # Slack takes at most 50 blocks
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{title(item)}* ({item.get('severity', 'info')})\n"
                    + str(item.get("message", "")),
                },
            }
        )
    if len(items) > 45:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"and {len(items) - 45} more"}],
            }
        )
    return {"text": text, "blocks": blocks}
