"""The purchasing service: plans from ClickHouse's demand and stock, keeps proposals and
purchase orders on `replenishment.proposals.v1`, sends them to suppliers, raises `incoming`
and follows receipts."""
