"""Shopify: webhooks and REST order polling in, GraphQL ``inventorySetQuantities`` out."""
