"""Connector configuration: which channel instances ``stockflow connectors serve`` runs.

The file is YAML, named by ``STOCKFLOW_CONNECTORS_CONFIG`` (see
``deploy/local/connectors.example.yaml``). It is read and validated once at start: every
problem raises :class:`ConnectorConfigError` naming the key path and the fix. Secrets are
kept as :class:`streams.kernel.settings.Secret` (they never print); a secret written as
``env:NAME`` is read from the environment variable ``NAME``.

Format::

    consumer_group: stockflow-connectors   # Kafka group of the levels consumer
    reconcile_interval_s: 300              # drift reconciliation of every channel
    drift_grace_s: 10                      # wait before a differing observation is drift
    channels:
      - name: shopify                      # the ledger's channel name; webhooks at /webhooks/<name>
        kind: shopify                      # shopify | woocommerce | magento | prestashop | fnac
        base_url: https://demo.myshopify.com
        api_version: 2026-01               # shopify only
        credentials:
          token: env:SHOPIFY_TOKEN         # shopify: access token
          webhook_secrets: [old, new]      # one or two (rotation)
        mapping: {shop: ..., push_location_id: 1, locations: {1: paris}, items: [...]}
        sync: realtime                     # or {every_minutes: 5}; optional coalesce_ms
        poll_interval_s: 60                # polling backup for lost webhooks (0 = off)
        poll_lookback_s: 900               # first start only: poll this far back (later
                                           # starts resume from the saved checkpoint)
        webhook_max_age_s: 21600           # shopify: refuse deliveries triggered longer ago
        retry: {max_attempts: 8, dirty_retry_s: 30}   # pushes: attempts before the dead
                                           # letter; probe of a channel with dirty SKUs
        limits: {gql_capacity: 1000, gql_restore: 50}   # shopify; woo: {per_s: 5, burst: 10}
        max_batch: 100
        on_refusal: flag                   # a line the ledger rejected: cancel | backorder | flag
        orders: lines                      # lines: per-line order StockEvents (default);
                                           # book: Order records to orders.v1 for the order
                                           # book, and orders cancelled here are cancelled
                                           # on the channel (connectors.framework.orders)
        prices: {currency: USD, markup_pct: 20, offset: "0", rounding: "0.99",
                 floor_margin_pct: 15, overrides: {chair: "49.00"}, sync: realtime}
                                           # optional: push prices (connectors.framework.pricing)
    price_rates: {base: EUR, date: 2026-11-30, rates: {USD: "1.0825"}}

WooCommerce credentials are ``consumer_key`` and ``consumer_secret``; its mapping is
``{site: ..., refunds_restock: false, products: [{sku, product_id, variation_id}]}``.

Magento's credential is ``token`` (an integration access token used as a Bearer; no webhook
secrets: its orders are polled); limits ``{per_s, burst}``; its mapping is ``{store: ...,
push_source: default, write: single, sources: {source_code: location}, skus: [...],
refunds_restock: false, bulk: {enabled: false, poll_s: 1, wait_s: 30}}``
(``connectors.magento.mapping``; ``write: per_source`` splits the figure across ``sources``).
Cdiscount (Octopia Seller API v2, ``base_url: https://api.octopia-io.net/seller/v2``) has
``client_id`` and ``client_secret`` (OAuth2 client credentials); limits ``{per_s, burst}``;
orders are polled (``orders: lines`` or ``book``); its mapping is ``{seller_id: ..., sales_channel:
CDISFR, auth_url: ..., skus: [...], acceptance_window_s: 172800, refusal_reason: OutOfStock,
packages: {poll_s: 5, wait_s: 600, max_offers: 1000}}`` (``connectors.cdiscount.mapping``).
Fnac Darty's credentials are ``partner_id``, ``shop_id`` and ``key`` (``auth`` gives the token;
no webhooks: set ``poll_interval_s``); limits ``{per_s, burst}`` (Fnac publishes none);
``orders: lines`` or ``book``; its mapping is ``{shop: ..., product_state: 11, acceptance_hours: 48,
batch: {poll_s: 2, wait_s: 60}, products: [{sku, ean}]}`` (``connectors.fnac.mapping``).
PrestaShop's credential is ``webservice_key`` (no webhooks: set ``poll_interval_s``); its
mapping is ``{shop: ..., shop_id: 1, timezone: UTC, currency: EUR, reserve_unpaid: true,
states: {paid: [...], shipped: [...], cancelled: [...], refunded: [...]},
products: [{sku, product_id, combination_id}]}`` (see ``connectors.prestashop.mapping``).
Amazon's credentials are ``client_id``, ``client_secret`` and ``refresh_token`` (Login with
Amazon; no webhooks: set ``poll_interval_s``; ``orders: book`` sends its orders straight to
the order book, no acceptance); ``base_url`` is the
regional Selling Partner API host; limits override documented rates per operation
(``{getOrders: 0.0167, patchListingsItem: 5, ...}``); its mapping is ``{seller_id: ...,
marketplace_id: ..., skus: [...], fba_location: amazon-fba, token_url: ..., confirm:
{poll_s, wait_s}, feed: {above, poll_s, wait_s}}`` (see ``connectors.amazon.mapping``).

eMAG (one platform and seller account per channel: ``base_url`` is the platform's API, e.g.
``https://marketplace-api.emag.ro/api-3``): credentials ``username``, ``password`` (HTTP
Basic) and ``callback_key`` (the secret in the order callback URL
``/callbacks/<name>/<callback_key>``); limits ``{orders_per_s: 12, others_per_s: 3}``;
``orders: lines`` or ``book``; its mapping is ``{account: ..., timezone: Europe/Bucharest,
warehouse_id: 1, accept_within_s: 0, products: [{sku, offer_id}]}``
(``connectors.emag.mapping``); ``max_batch`` at most 50.

A Mirakl operator (``kind: mirakl``, one channel per operator, ``base_url`` its instance)
takes ``api_key``; limits ``{or11_interval_s, of01_interval_s, throttle_pause_s, per_s,
burst}``; its mapping is ``{operator, shop, shop_id, write: of24|of01, import: {poll_s,
wait_s}, offers: [{sku, price, state_code, product_id, product_id_type}]}``
(``connectors.mirakl.mapping``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connectors.amazon.limits import RATES as AMAZON_RATES
from connectors.amazon.mapping import AmazonMapping
from connectors.cdiscount.mapping import CdiscountMapping
from connectors.emag.mapping import EmagMapping
from connectors.fnac.mapping import FnacMapping
from connectors.framework.orders import DEFAULT_ORDER_MODE, ORDER_MODES
from connectors.framework.pricing import PRICE_KEYS, PriceRule, PriceRuleError, Rates
from connectors.magento.mapping import MagentoMapping
from connectors.mirakl.limits import LIMIT_KEYS as MIRAKL_LIMITS
from connectors.mirakl.mapping import MiraklMapping
from connectors.prestashop.mapping import PrestaMapping
from connectors.shopify.mapping import ShopifyMapping
from connectors.woocommerce.mapping import WooMapping
from streams.kernel.settings import Secret

CONFIG_ENV = "STOCKFLOW_CONNECTORS_CONFIG"
# one per channel kind
ChannelMapping = (
    ShopifyMapping
    | WooMapping
    | MagentoMapping
    | PrestaMapping
    | CdiscountMapping
    | AmazonMapping
    | FnacMapping
    | EmagMapping
    | MiraklMapping
)
# the mappings that list their SKUs as such (the others list products or items)
_LISTS_SKUS = (
    MagentoMapping,
    CdiscountMapping,
    AmazonMapping,
    FnacMapping,
    EmagMapping,
    MiraklMapping,
)
KINDS = (
    "shopify",
    "woocommerce",
    "magento",
    "prestashop",
    "cdiscount",
    "amazon",
    "fnac",
    "emag",
    "mirakl",
)
_TOP_KEYS = {"consumer_group", "reconcile_interval_s", "drift_grace_s", "channels", "price_rates"}
_CHANNEL_KEYS = {
    "name",
    "kind",
    "base_url",
    "api_version",
    "credentials",
    "mapping",
    "sync",
    "poll_interval_s",
    "poll_lookback_s",
    "webhook_max_age_s",
    "retry",
    "limits",
    "max_batch",
    "on_refusal",
    "orders",
    "prices",
}
REFUSAL_POLICIES = ("cancel", "backorder", "flag")
_CREDENTIALS = {
    "shopify": {"token", "webhook_secrets"},
    "woocommerce": {"consumer_key", "consumer_secret", "webhook_secrets"},
    "magento": {"token"},
    "prestashop": {"webservice_key"},  # no webhooks in core: polled
    "cdiscount": {"client_id", "client_secret"},  # OAuth2 client credentials; polled
    "amazon": {"client_id", "client_secret", "refresh_token"},  # Login with Amazon: polled
    "fnac": {"partner_id", "shop_id", "key"},  # no webhooks: polled
    "emag": {"username", "password", "callback_key"},
    "mirakl": {"api_key"},  # the shop's key on that operator; polled
}
_LIMITS = {
    "shopify": {"gql_capacity", "gql_restore", "rest_capacity", "rest_leak"},
    "woocommerce": {"per_s", "burst"},
    "magento": {"per_s", "burst"},
    "prestashop": {"per_s", "burst"},
    "cdiscount": {"per_s", "burst"},
    "amazon": set(AMAZON_RATES),  # rate per second of each operation
    "fnac": {"per_s", "burst"},
    "emag": {"orders_per_s", "others_per_s"},
    "mirakl": set(MIRAKL_LIMITS),
}


class ConnectorConfigError(ValueError):
    """The connector configuration cannot be used; the message names the key path and fix."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class SyncMode:
    """``interval_s=None`` is real time (coalesced over ``coalesce_s``)."""

    interval_s: float | None = None
    coalesce_s: float = 0.05


@dataclass(frozen=True)
class ChannelInstance:
    name: str
    kind: str
    base_url: str
    credentials: Mapping[str, Secret]
    webhook_secrets: tuple[Secret, ...]
    mapping: ChannelMapping
    sync: SyncMode
    poll_interval_s: float
    limits: Mapping[str, float]
    max_batch: int
    api_version: str = "2026-01"
    on_refusal: str = "flag"  # what a line the ledger rejected does on the channel
    poll_lookback_s: float = 900.0
    webhook_max_age_s: float = 21600.0
    max_attempts: int = 8
    dirty_retry_s: float = 30.0
    orders: str = DEFAULT_ORDER_MODE  # lines | book
    prices: PriceRule | None = None  # None: this channel's prices are not pushed
    price_sync: SyncMode = field(default_factory=SyncMode)

    def secret(self, name: str) -> str:
        return self.credentials[name].reveal()

    @property
    def skus(self) -> frozenset[str]:
        m = self.mapping
        if isinstance(m, ShopifyMapping):
            return frozenset(i.sku for i in m.items)
        if isinstance(m, _LISTS_SKUS):
            return frozenset(m.skus)
        return frozenset(p.sku for p in m.products)


@dataclass(frozen=True)
class ConnectorsConfig:
    channels: tuple[ChannelInstance, ...]
    consumer_group: str = "stockflow-connectors"
    reconcile_interval_s: float = 300.0
    drift_grace_s: float = 10.0
    price_rates: Rates = field(default_factory=Rates)


def config_path() -> str:
    return os.environ.get(CONFIG_ENV, "")


def load_connectors_config(path: str | Path | None = None) -> ConnectorsConfig:
    """Read and validate the file at ``path`` (default: ``$STOCKFLOW_CONNECTORS_CONFIG``)."""
    where = str(path) if path else config_path()
    if not where:
        raise ConnectorConfigError(
            CONFIG_ENV, "not set; point it at a YAML file like deploy/local/connectors.example.yaml"
        )
    p = Path(where)
    if not p.is_file():
        raise ConnectorConfigError(str(p), f"no such file; check {CONFIG_ENV}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConnectorConfigError(str(p), f"not valid YAML: {exc}") from None
    return parse_connectors_config(raw)


def parse_connectors_config(raw: Any) -> ConnectorsConfig:
    _keys(raw, "<config>", _TOP_KEYS)
    channels_raw = raw.get("channels")
    if not isinstance(channels_raw, list) or not channels_raw:
        raise ConnectorConfigError("channels", "must be a non-empty list of channel instances")
    channels: list[ChannelInstance] = []
    for i, entry in enumerate(channels_raw):
        channel = _channel(entry, f"channels[{i}]")
        if any(c.name == channel.name for c in channels):
            raise ConnectorConfigError(
                f"channels[{i}].name", f"{channel.name!r} is listed twice; keep one entry"
            )
        channels.append(channel)
    return ConnectorsConfig(
        channels=tuple(channels),
        consumer_group=_str(raw.get("consumer_group", "stockflow-connectors"), "consumer_group"),
        reconcile_interval_s=_number(
            raw.get("reconcile_interval_s", 300), "reconcile_interval_s", minimum=1
        ),
        drift_grace_s=_number(raw.get("drift_grace_s", 10), "drift_grace_s"),
        price_rates=_price_rates(raw.get("price_rates")),
    )


def _channel(raw: Any, path: str) -> ChannelInstance:
    _keys(raw, path, _CHANNEL_KEYS)
    name = _str(raw.get("name"), f"{path}.name")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConnectorConfigError(f"{path}.kind", f"{kind!r}: use one of {', '.join(KINDS)}")
    base_url = _base_url(raw.get("base_url"), f"{path}.base_url")
    credentials, secrets = _credentials(raw.get("credentials"), f"{path}.credentials", kind)
    limits_raw = raw.get("limits") or {}
    _keys(limits_raw, f"{path}.limits", _LIMITS[kind])
    limits = {k: _number(v, f"{path}.limits.{k}", minimum=1e-9) for k, v in limits_raw.items()}
    if kind == "emag":
        _emag_rules(raw, path)
    return ChannelInstance(
        name=name,
        kind=kind,
        base_url=base_url,
        credentials=credentials,
        webhook_secrets=secrets,
        mapping=_channel_mapping(raw.get("mapping"), f"{path}.mapping", kind, name),
        sync=_sync(raw.get("sync", "realtime"), f"{path}.sync"),
        poll_interval_s=_number(raw.get("poll_interval_s", 60), f"{path}.poll_interval_s"),
        limits=limits,
        max_batch=int(_number(raw.get("max_batch", 100), f"{path}.max_batch", minimum=1)),
        api_version=_str(raw.get("api_version", "2026-01"), f"{path}.api_version"),
        on_refusal=_refusal(raw.get("on_refusal", "flag"), f"{path}.on_refusal"),
        orders=_orders_mode(raw.get("orders", DEFAULT_ORDER_MODE), f"{path}.orders", kind),
        poll_lookback_s=_number(raw.get("poll_lookback_s", 900), f"{path}.poll_lookback_s"),
        webhook_max_age_s=_number(
            raw.get("webhook_max_age_s", 21600), f"{path}.webhook_max_age_s", minimum=1
        ),
        **_retry(raw.get("retry") or {}, f"{path}.retry"),
        **_prices(raw.get("prices"), f"{path}.prices"),
    )


def _emag_rules(raw: Any, path: str) -> None:
    """eMAG: ≤ 50 offers per save (eMAG refuses more), at least 1 request a second."""
    if isinstance(raw.get("max_batch"), int) and raw["max_batch"] > 50:
        raise ConnectorConfigError(f"{path}.max_batch", "eMAG saves at most 50 offers at once")
    for key, value in (raw.get("limits") or {}).items():
        if isinstance(value, int | float) and value < 1:
            raise ConnectorConfigError(
                f"{path}.limits.{key}", "at least 1 request per second (eMAG counts per second)"
            )


def _prices(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    _keys(raw, path, set(PRICE_KEYS))
    try:
        rule = PriceRule.from_config(raw, path)
    except PriceRuleError as exc:
        raise ConnectorConfigError(path, str(exc)) from None
    return {"prices": rule, "price_sync": _sync(raw.get("sync", "realtime"), f"{path}.sync")}


def _price_rates(raw: Any) -> Rates:
    if raw is None:
        return Rates()
    _keys(raw, "price_rates", {"base", "date", "rates"})
    try:
        return Rates.from_config(raw)
    except PriceRuleError as exc:
        raise ConnectorConfigError("price_rates", str(exc)) from None


def _retry(raw: Any, path: str) -> dict[str, Any]:
    _keys(raw, path, {"max_attempts", "dirty_retry_s"})
    return {
        "max_attempts": int(_number(raw.get("max_attempts", 8), f"{path}.max_attempts", minimum=1)),
        "dirty_retry_s": _number(
            raw.get("dirty_retry_s", 30), f"{path}.dirty_retry_s", minimum=0.1
        ),
    }


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _base_url(raw: Any, path: str) -> str:
    """https, or plain http to this machine only: the credentials travel in every request."""
    from urllib.parse import urlsplit

    base_url = _str(raw, path)
    try:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
    except ValueError:
        raise ConnectorConfigError(path, f"{base_url!r} is not a URL") from None
    if parts.scheme == "https" and host:
        return base_url
    if parts.scheme == "http" and (host in _LOOPBACK or host.startswith("127.")):
        return base_url
    raise ConnectorConfigError(
        path,
        f"{base_url!r}: use https:// (plain http:// is accepted only for a loopback address "
        "such as 127.0.0.1 or localhost, i.e. a local fake): the API credentials are sent "
        "with every request",
    )


def _refusal(raw: Any, path: str) -> str:
    if raw not in REFUSAL_POLICIES:
        raise ConnectorConfigError(path, f"{raw!r}: use one of {', '.join(REFUSAL_POLICIES)}")
    return str(raw)


def _orders_mode(raw: Any, path: str, kind: str = "") -> str:
    if raw not in ORDER_MODES:
        raise ConnectorConfigError(
            path,
            f"{raw!r}: use lines (per-line order events to the ledger) or book (Order records "
            "to the order book); one path per channel, never both",
        )
    return str(raw)


def _credentials(raw: Any, path: str, kind: str) -> tuple[dict[str, Secret], tuple[Secret, ...]]:
    _keys(raw, path, _CREDENTIALS[kind])
    values = {
        key: _secret(raw.get(key), f"{path}.{key}")
        for key in sorted(_CREDENTIALS[kind] - {"webhook_secrets"})
    }
    if "webhook_secrets" not in _CREDENTIALS[kind]:
        return values, ()
    listed = raw.get("webhook_secrets")
    if "webhook_secrets" not in _CREDENTIALS[kind]:
        return values, ()  # polled only
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list) or not 1 <= len(listed) <= 2:
        raise ConnectorConfigError(
            f"{path}.webhook_secrets", "list one secret, or two (old and new) during a rotation"
        )
    secrets = tuple(_secret(s, f"{path}.webhook_secrets[{i}]") for i, s in enumerate(listed))
    return values, secrets


def _secret(raw: Any, path: str) -> Secret:
    if not isinstance(raw, str) or not raw:
        raise ConnectorConfigError(path, "must be a non-empty string (or env:VARIABLE)")
    if raw.startswith("env:"):
        name = raw.removeprefix("env:")
        value = os.environ.get(name, "")
        if not value:
            raise ConnectorConfigError(path, f"environment variable {name} is not set or empty")
        return Secret(value)
    return Secret(raw)


def _channel_mapping(raw: Any, path: str, kind: str, name: str) -> ChannelMapping:
    if not isinstance(raw, dict):
        raise ConnectorConfigError(path, "must be a mapping of the channel's ids to SKUs")
    data = {**raw, "channel": name}
    try:
        if kind == "shopify":
            shopify = ShopifyMapping.from_config(data)
            mapping: ChannelMapping = shopify
            skus = [i.sku for i in shopify.items]
        elif kind == "magento":
            magento = MagentoMapping.from_config(data)
            mapping, skus = magento, list(magento.skus)
        elif kind == "cdiscount":
            cdiscount = CdiscountMapping.from_config(data)
            mapping, skus = cdiscount, list(cdiscount.skus)
        elif kind == "amazon":
            amazon = AmazonMapping.from_config(data)
            mapping, skus = amazon, list(amazon.skus)
        elif kind == "fnac":
            fnac = FnacMapping.from_config(data)
            listed = data.get("products") or []
            mapping, skus = fnac, [str(p.get("sku")) for p in listed if isinstance(p, dict)]
        elif kind == "emag":
            emag = EmagMapping.from_config(data)
            mapping, skus = emag, emag.skus
        elif kind == "mirakl":
            mirakl = MiraklMapping.from_config(data)
            mapping, skus = mirakl, list(mirakl.skus)
        elif kind == "prestashop":
            presta = PrestaMapping.from_config(data)
            mapping, skus = presta, [p.sku for p in presta.products]
        else:
            woo = WooMapping.from_config(data)
            mapping, skus = woo, [p.sku for p in woo.products]
    except KeyError as exc:
        raise ConnectorConfigError(f"{path}.{exc.args[0]}", "missing; see the example") from None
    except (TypeError, ValueError) as exc:
        raise ConnectorConfigError(path, f"unreadable ({exc}); ids must be integers") from None
    duplicated = sorted({s for s in skus if skus.count(s) > 1})
    if duplicated:
        raise ConnectorConfigError(path, f"SKUs mapped twice: {', '.join(duplicated)}")
    return mapping


def _sync(raw: Any, path: str) -> SyncMode:
    if raw == "realtime":
        return SyncMode()
    if not isinstance(raw, dict):
        raise ConnectorConfigError(path, f"{raw!r}: write realtime or {{every_minutes: N}}")
    _keys(raw, path, {"every_minutes", "coalesce_ms"})
    coalesce = _number(raw.get("coalesce_ms", 50), f"{path}.coalesce_ms") / 1000
    if "every_minutes" not in raw:
        return SyncMode(None, coalesce)
    minutes = _number(raw["every_minutes"], f"{path}.every_minutes", minimum=1e-9)
    return SyncMode(minutes * 60, coalesce)


def _keys(raw: Any, path: str, allowed: set[str]) -> None:
    if not isinstance(raw, dict):
        raise ConnectorConfigError(path, f"must be a mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in allowed:
            where = key if path == "<config>" else f"{path}.{key}"
            raise ConnectorConfigError(
                where, f"unknown key; expected one of {', '.join(sorted(allowed))}"
            )


def _str(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConnectorConfigError(path, "must be a non-empty string")
    return raw


def _number(raw: Any, path: str, minimum: float = 0) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ConnectorConfigError(path, f"{raw!r} is not a number")
    if raw < minimum:
        raise ConnectorConfigError(path, f"{raw} is below {minimum:g}")
    return float(raw)
