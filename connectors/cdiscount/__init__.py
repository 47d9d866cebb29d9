"""Cdiscount through the Octopia Seller API v2: orders polled in and accepted or refused
from the ledger's decisions, offer quantities out through asynchronous offer packages."""
