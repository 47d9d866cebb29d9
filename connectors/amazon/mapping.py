"""Amazon seller, marketplace, SKUs and options, from configuration.

Configuration shape::

    {"channel": "amazon", "seller_id": "A1SELLER", "marketplace_id": "A13V1IB3VIYZZH",
     "skus": ["chair", "table"], "fba_location": "amazon-fba",
     "token_url": "https://api.amazon.com/auth/o2/token",
     "confirm": {"poll_s": 2, "wait_s": 120},
     "feed": {"above": 20, "poll_s": 30, "wait_s": 900}}

Amazon addresses listings by the seller's SKU, so a stockflow SKU is the Amazon SKU.
``fba_location`` names the stockflow location that receives the fulfillable quantities of
Amazon's own warehouses (FBA) as counts; absent, FBA stock is not imported. It is read-only:
the connector only ever writes the merchant-fulfilled (``DEFAULT``) quantity.
``confirm``: a listings patch Amazon answered ``ACCEPTED`` is read back every ``poll_s``
until the listing shows the quantity, for at most ``wait_s`` (else pushed again).
``feed``: a batch of more than ``above`` SKUs goes as one ``JSON_LISTINGS_FEED`` whose
status is polled every ``poll_s`` for at most ``wait_s`` (``above: 0`` never uses feeds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TOKEN_URL = "https://api.amazon.com/auth/o2/token"  # noqa: S105 - a URL, not a secret


@dataclass(frozen=True)
class Confirm:
    poll_s: float = 2.0
    wait_s: float = 120.0


@dataclass(frozen=True)
class FeedOptions:
    above: int = 20
    poll_s: float = 30.0
    wait_s: float = 900.0


def _options(raw: Any, name: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise TypeError(f"{name} must be a mapping {{{', '.join(keys)}}}")
    unknown = set(raw) - set(keys)
    if unknown:
        raise ValueError(f"unknown {name} keys {sorted(unknown)}; use {', '.join(keys)}")
    for key in ("poll_s", "wait_s"):
        if key in raw and float(raw[key]) <= 0:
            raise ValueError(f"{name}.{key} must be positive")
    return raw


@dataclass(frozen=True)
class AmazonMapping:
    seller_id: str
    marketplace_id: str
    skus: tuple[str, ...] = ()
    fba_location: str | None = None
    token_url: str = TOKEN_URL
    confirm: Confirm = Confirm()
    feed: FeedOptions = FeedOptions()
    channel: str = "amazon"

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> AmazonMapping:
        confirm = _options(data.get("confirm"), "confirm", ("poll_s", "wait_s"))
        feed = _options(data.get("feed"), "feed", ("above", "poll_s", "wait_s"))
        above = int(feed.get("above", 20))
        if above < 0:
            raise ValueError("feed.above must be 0 (never) or a positive batch size")
        fba = data.get("fba_location")
        return cls(
            seller_id=str(data["seller_id"]),
            marketplace_id=str(data["marketplace_id"]),
            skus=tuple(str(s) for s in data.get("skus", [])),
            fba_location=None if fba in (None, "") else str(fba),
            token_url=str(data.get("token_url", TOKEN_URL)),
            confirm=Confirm(float(confirm.get("poll_s", 2.0)), float(confirm.get("wait_s", 120.0))),
            feed=FeedOptions(
                above, float(feed.get("poll_s", 30.0)), float(feed.get("wait_s", 900.0))
            ),
            channel=str(data.get("channel", "amazon")),
        )

    def knows(self, sku: object) -> bool:
        return isinstance(sku, str) and sku in self.skus
