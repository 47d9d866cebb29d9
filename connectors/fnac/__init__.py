"""Fnac Darty marketplace: XML API (``auth``, ``offers_update``/``batch_status``,
``orders_query``, ``orders_update``), orders accepted or refused from the ledger's answer."""
