"""Replenishment rules, pure: suppliers and policies, demand forecasts, order proposals and
the purchase order documents. No Kafka, no ClickHouse: `streams.purchasing` feeds it."""
