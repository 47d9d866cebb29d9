"""eMAG Marketplace (RO, BG, HU): orders called back and polled in, accepted or refused from
the ledger's decisions, offer stock saved out."""
