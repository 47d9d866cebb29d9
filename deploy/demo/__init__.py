"""`stockflow demo`: the whole pipeline on the local stack, playing a scripted day.

The two channel shops are the fakes of ``tests/fakes`` (they imitate Shopify's and
WooCommerce's real APIs); everything else is the real thing: Kafka, the Faust ledger
worker, the ClickHouse sink, the connectors, Prometheus.
"""
