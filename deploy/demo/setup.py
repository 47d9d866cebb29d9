"""The demo's configuration files: one warehouse, a store, the channels and their fake shops
(Shopify, WooCommerce and, when given their ports, Magento and PrestaShop), each with its
price rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SHOPIFY_PORT = 8701
WOO_PORT = 8702
SHOPIFY_ITEM, SHOPIFY_VARIANT, SHOPIFY_LOCATION = 5001, 5002, 1
WOO_PRODUCT = 301
SHOPIFY_PRODUCT = 500
PRESTA_PRODUCT = 12
MAGENTO_SOURCE = "default"
PRICE_RATES = {"base": "EUR", "date": "2026-11-30", "rates": {"USD": "1.10"}}
PRICE_RULES: dict[str, dict[str, Any]] = {
    # each shop shows the one base price by its own rules (connectors/framework/pricing.py)
    "shopify": {"markup_pct": 10, "rounding": "0.99"},
    "woocommerce": {"rounding": "whole"},
    "magento": {"rounding": "none"},
    "prestashop": {"markup_pct": -5, "rounding": "0.95"},
}
WAREHOUSE = "paris-wh"
STORE = "paris-store"  # click and collect, where the order book runs


def write_configs(
    folder: Path,
    sku: str,
    run: str,
    shopify_port: int = SHOPIFY_PORT,
    woo_port: int = WOO_PORT,
    orders: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    magento_port: int | None = None,
    presta_port: int | None = None,
    presta_key: str = "",
    marketplaces: list[dict[str, Any]] | None = None,
) -> tuple[Path, Path]:
    """(ledger config, connectors config) for this run's SKU and shops; ``orders``: the
    order book's section (with it, the store's click-and-collect location too); ``extra``:
    more top-level sections of the ledger's file (replenishment, notifications);
    ``magento_port``, ``presta_port``: the Magento and PrestaShop shops, when given;
    ``marketplaces``: the marketplaces' channels of the connectors' file."""
    folder.mkdir(parents=True, exist_ok=True)
    ledger = folder / "channels.yaml"
    locations = [{"name": WAREHOUSE}] + ([{"name": STORE}] if orders is not None else [])
    ledger_config: dict[str, Any] = {
        "default_location": WAREHOUSE,
        "low_stock_threshold": 10,
        "discrepancy_alert_threshold": 0,
        "locations": locations,
        "channels": [{"name": name} for name in channels(magento_port, presta_port)]
        + [{"name": m["name"], "locations": [WAREHOUSE]} for m in marketplaces or []],
    }
    if orders is not None:
        ledger_config["orders"] = orders
    ledger_config.update(extra or {})
    ledger.write_text(yaml.safe_dump(ledger_config, sort_keys=False))
    connectors = folder / "connectors.yaml"
    connectors.write_text(
        yaml.safe_dump(
            {
                "consumer_group": f"demo-connectors-{run}",
                "reconcile_interval_s": 30,
                "price_rates": PRICE_RATES,
                "channels": [
                    {
                        "name": "shopify",
                        "kind": "shopify",
                        "base_url": f"http://127.0.0.1:{shopify_port}",
                        "api_version": "2026-01",
                        "credentials": {
                            "token": "shpat_test",
                            "webhook_secrets": ["shopify-secret"],
                        },
                        "mapping": {
                            "shop": "demo.myshopify.com",
                            "push_location_id": SHOPIFY_LOCATION,
                            "locations": {SHOPIFY_LOCATION: WAREHOUSE},
                            "items": [
                                {
                                    "sku": sku,
                                    "inventory_item_id": SHOPIFY_ITEM,
                                    "variant_id": SHOPIFY_VARIANT,
                                    "product_id": SHOPIFY_PRODUCT,
                                }
                            ],
                        },
                        "poll_interval_s": 0,
                        "prices": PRICE_RULES["shopify"],
                    },
                    {
                        "name": "woocommerce",
                        "kind": "woocommerce",
                        "base_url": f"http://127.0.0.1:{woo_port}",
                        "credentials": {
                            "consumer_key": "ck_test",
                            "consumer_secret": "cs_test",
                            "webhook_secrets": ["woo-secret"],
                        },
                        "mapping": {
                            "site": "https://shop.example/",
                            "products": [{"sku": sku, "product_id": WOO_PRODUCT}],
                        },
                        "poll_interval_s": 0,
                        "prices": PRICE_RULES["woocommerce"],
                    },
                    *_more_shops(sku, magento_port, presta_port, presta_key),
                    *(marketplaces or []),
                ],
            },
            sort_keys=False,
        )
    )
    return ledger, connectors


def channels(magento_port: int | None = None, presta_port: int | None = None) -> list[str]:
    """The ledger's channels: the shops given, and the store's till."""
    shops = ["shopify", "woocommerce"]
    shops += ["magento"] if magento_port is not None else []
    shops += ["prestashop"] if presta_port is not None else []
    return [*shops, "store"]


def _more_shops(
    sku: str, magento_port: int | None, presta_port: int | None, presta_key: str
) -> list[dict[str, Any]]:
    """Magento (MSI, bulk writes) and PrestaShop (webservice): both polled, no webhooks."""
    shops: list[dict[str, Any]] = []
    if magento_port is not None:
        shops.append(
            {
                "name": "magento",
                "kind": "magento",
                "base_url": f"http://127.0.0.1:{magento_port}",
                "credentials": {"token": "magento-token"},
                "mapping": {
                    "store": "magento.example",
                    "push_source": MAGENTO_SOURCE,
                    "sources": {MAGENTO_SOURCE: WAREHOUSE},
                    "skus": [sku],
                    "bulk": {"enabled": True, "poll_s": 0.1, "wait_s": 5},
                },
                "sync": {"coalesce_ms": 0},
                "poll_interval_s": 0.5,
                "poll_lookback_s": 60,
                "prices": PRICE_RULES["magento"],
            }
        )
    if presta_port is not None:
        shops.append(
            {
                "name": "prestashop",
                "kind": "prestashop",
                "base_url": f"http://127.0.0.1:{presta_port}",
                "credentials": {"webservice_key": presta_key},
                "mapping": {
                    "shop": "https://presta.example/",
                    "states": {"paid": [2], "shipped": [4, 5], "cancelled": [6], "refunded": [7]},
                    "products": [{"sku": sku, "product_id": PRESTA_PRODUCT}],
                },
                "sync": {"coalesce_ms": 20},
                "poll_interval_s": 1,
                "prices": PRICE_RULES["prestashop"],
            }
        )
    return shops
