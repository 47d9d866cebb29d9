"""Cdiscount (Octopia) SKUs and options, from configuration.

Configuration shape::

    {"channel": "cdiscount", "seller_id": "98979", "sales_channel": "CDISFR",
     "auth_url": "https://auth.octopia-io.net/auth/realms/maas/protocol/openid-connect/token",
     "skus": ["chair", "table"],
     "acceptance_window_s": 172800, "refusal_reason": "OutOfStock",
     "packages": {"poll_s": 5, "wait_s": 600, "max_offers": 1000}}

An offer is addressed by its ``sellerExternalReference``, which is the stockflow SKU (an
order line names it as ``offer.sellerProductId``). ``acceptance_window_s`` is how long
Cdiscount leaves an order in ``WaitingAcceptance`` before cancelling it (counted from the
order's ``createdAt``); the acceptance gate refuses an undecided order before then.
``refusal_reason`` is sent with a refusal. ``packages`` sets how an offer package is polled
after it was set ``Ready`` (every ``poll_s`` for at most ``wait_s``) and how many offer
requests one package carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

AUTH_URL = "https://auth.octopia-io.net/auth/realms/maas/protocol/openid-connect/token"
DEFAULT_WINDOW_S = 2 * 24 * 3600.0
_PACKAGE_KEYS = {"poll_s", "wait_s", "max_offers"}


@dataclass(frozen=True)
class PackageOptions:
    poll_s: float = 5.0
    wait_s: float = 600.0
    max_offers: int = 1000


@dataclass(frozen=True)
class CdiscountMapping:
    seller_id: str
    sales_channel: str = "CDISFR"
    auth_url: str = AUTH_URL
    skus: tuple[str, ...] = ()
    acceptance_window_s: float = DEFAULT_WINDOW_S
    refusal_reason: str = "OutOfStock"
    packages: PackageOptions = PackageOptions()
    channel: str = "cdiscount"

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> CdiscountMapping:
        packages = data.get("packages") or {}
        if not isinstance(packages, Mapping):
            raise TypeError("packages must be a mapping {poll_s, wait_s, max_offers}")
        unknown = set(packages) - _PACKAGE_KEYS
        if unknown:
            raise ValueError(
                f"unknown packages keys {sorted(unknown)}; use {sorted(_PACKAGE_KEYS)}"
            )
        options = PackageOptions(
            poll_s=float(packages.get("poll_s", 5.0)),
            wait_s=float(packages.get("wait_s", 600.0)),
            max_offers=int(packages.get("max_offers", 1000)),
        )
        if options.poll_s <= 0 or options.wait_s <= 0 or options.max_offers < 1:
            raise ValueError("packages.poll_s, wait_s and max_offers must be positive")
        window = float(data.get("acceptance_window_s", DEFAULT_WINDOW_S))
        if window <= 0:
            raise ValueError("acceptance_window_s must be positive")
        return cls(
            seller_id=str(data["seller_id"]),
            sales_channel=str(data.get("sales_channel", "CDISFR")),
            auth_url=str(data.get("auth_url", AUTH_URL)),
            skus=tuple(str(s) for s in data.get("skus", [])),
            acceptance_window_s=window,
            refusal_reason=str(data.get("refusal_reason", "OutOfStock")),
            packages=options,
            channel=str(data.get("channel", "cdiscount")),
        )

    def knows(self, sku: object) -> bool:
        return isinstance(sku, str) and sku in self.skus
