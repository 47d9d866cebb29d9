"""Mirakl-run marketplaces (one host per operator): orders polled (OR11) and accepted or
refused (OR21) from the ledger's decisions; offers' quantities out by OF24 or OF01 imports."""
