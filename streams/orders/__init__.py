"""The order book's rules: an order's lifecycle, routing, approvals. Pure: no Kafka, no Faust."""
