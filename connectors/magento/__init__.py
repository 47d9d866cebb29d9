"""Magento 2 with MSI: orders, shipments and credit memos polled in, source items out."""
