"""Alerts that reach people: routing rules from `stock.alerts.v1` to email, webhooks and the
page, deduplicated, with quiet hours, digests, retries and a record of every delivery."""
