"""Bundles and kits: a bundle SKU sold as a set of component SKUs.

Pure rules, no Kafka: the catalogue (the ``bundles:`` key of the ledger's YAML), the
bundle's sellable quantity derived from its components' levels, and the expansion of a
bundle line into component lines for the order book and of a bundle StockEvent into
component StockEvents for the connectors' line intake.
"""
