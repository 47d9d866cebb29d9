"""Fulfilment: waves of released orders, pick lists, pick confirmation and shipping documents."""
