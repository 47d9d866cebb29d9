"""The demo's configuration files: one warehouse, three channels, two fake shops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SHOPIFY_PORT = 8701
WOO_PORT = 8702
SHOPIFY_ITEM, SHOPIFY_VARIANT, SHOPIFY_LOCATION = 5001, 5002, 1
WOO_PRODUCT = 301
WAREHOUSE = "paris-wh"
STORE = "paris-store"  # click and collect, where the order book runs
CHANNELS = ("shopify", "woocommerce", "store")


def write_configs(
    folder: Path,
    sku: str,
    run: str,
    shopify_port: int = SHOPIFY_PORT,
    woo_port: int = WOO_PORT,
    orders: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """(ledger config, connectors config) for this run's SKU and shops; ``orders``: the
    order book's section (with it, the store's click-and-collect location too); ``extra``:
    more top-level sections of the ledger's file (replenishment, notifications)."""
    folder.mkdir(parents=True, exist_ok=True)
    ledger = folder / "channels.yaml"
    locations = [{"name": WAREHOUSE}] + ([{"name": STORE}] if orders is not None else [])
    ledger_config: dict[str, Any] = {
        "default_location": WAREHOUSE,
        "low_stock_threshold": 10,
        "discrepancy_alert_threshold": 0,
        "locations": locations,
        "channels": [{"name": name} for name in CHANNELS],
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
                                }
                            ],
                        },
                        "poll_interval_s": 0,
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
                    },
                ],
            },
            sort_keys=False,
        )
    )
    return ledger, connectors
