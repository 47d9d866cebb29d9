"""The ``carriers:`` configuration: accounts, parcel sizes per SKU, ship-from addresses per
location and the service level per channel. Read once and validated: each problem raises
:class:`CarrierConfigError` naming the key path and the fix. Secrets are
:class:`~streams.kernel.settings.Secret` (``env:NAME`` reads the environment variable).

Format (YAML, a ``carriers:`` mapping in the connectors' or the shipping service's file)::

    carriers:
      accounts:
        - {name: ups, kind: ups, base_url: https://onlinetools.ups.com,
           credentials: {client_id: env:UPS_ID, client_secret: env:UPS_SECRET, account: A1B2C3},
           limits: {per_s: 5, burst: 10, timeout_s: 10, max_attempts: 3}, services: ["11", "65"]}
        - {name: dhl, kind: dhl, base_url: https://express.api.dhl.com/mydhlapi,
           credentials: {api_key: env:DHL_KEY, api_secret: env:DHL_SECRET, account: "123456789"},
           label_format: pdf}
        - {name: chronopost, kind: chronopost, base_url: https://ws.chronopost.fr,
           credentials: {account: "19869502", password: env:CHRONO_PASSWORD}, label_mode: PDF}
      quote_timeout_s: 5                  # a carrier slower than this is skipped when shopping
      currency: EUR                       # rates in another currency are not compared
      max_parcel_weight_g: 30000
      default_parcel: {weight_g: 1000, length_mm: 300, width_mm: 200, height_mm: 100}
      parcels: {chair: {weight_g: 7000, length_mm: 600, width_mm: 500, height_mm: 450}}
      ship_from: {paris: {country: FR, postal_code: "75011", city: Paris, lines: ["1 rue X"],
                          name: Stockflow SAS}}
      service_levels:                     # per channel; "default" for the others
        default: {service_level: standard, max_days: 5}
        shopify: {service_level: express, max_days: 2}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from connectors.carriers.base import Carrier
from connectors.carriers.http import HttpLimits
from connectors.carriers.model import Address, Parcel
from connectors.carriers.shopping import LEVELS, ServiceLevel
from streams.kernel.settings import Secret

KINDS: Final = ("ups", "dhl", "chronopost")
_CREDENTIALS: Final = {
    "ups": ("client_id", "client_secret", "account"),
    "dhl": ("api_key", "api_secret", "account"),
    "chronopost": ("account", "password"),
}
_ACCOUNT_KEYS: Final = {
    "name",
    "kind",
    "base_url",
    "credentials",
    "limits",
    "services",
    "label_format",
    "label_mode",
    "days",
    "sub_account",
}
_TOP_KEYS: Final = {
    "accounts",
    "quote_timeout_s",
    "currency",
    "max_parcel_weight_g",
    "default_parcel",
    "parcels",
    "ship_from",
    "service_levels",
}


class CarrierConfigError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"carriers config {path}: {message}")


@dataclass(frozen=True)
class CarrierAccount:
    name: str
    kind: str
    base_url: str
    credentials: Mapping[str, Secret]
    limits: HttpLimits = field(default_factory=HttpLimits)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CarriersConfig:
    accounts: tuple[CarrierAccount, ...] = ()
    quote_timeout_s: float = 10.0
    currency: str | None = None
    max_parcel_weight_g: int = 30_000
    default_parcel: Parcel | None = None
    parcels: Mapping[str, Parcel] = field(default_factory=dict)
    ship_from: Mapping[str, Address] = field(default_factory=dict)
    service_levels: Mapping[str, ServiceLevel] = field(default_factory=dict)

    def level_for(self, channel: str) -> ServiceLevel:
        return self.service_levels.get(channel) or self.service_levels.get(
            "default", ServiceLevel()
        )


def _mapping(raw: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise CarrierConfigError(path, f"expected a mapping, got {type(raw).__name__}")
    return raw


def _only(raw: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise CarrierConfigError(path, f"unknown keys {unknown}; allowed: {sorted(allowed)}")


def _secret(raw: Any, path: str) -> Secret:
    if not isinstance(raw, str | int) or raw == "":
        raise CarrierConfigError(path, "expected a non-empty value or env:NAME")
    text = str(raw)
    if text.startswith("env:"):
        value = os.environ.get(text[4:], "")
        if not value:
            raise CarrierConfigError(path, f"environment variable {text[4:]} is empty or unset")
        return Secret(value)
    return Secret(text)


def _positive_int(raw: Any, path: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or raw <= 0:
        raise CarrierConfigError(path, f"expected a positive integer, got {raw!r}")
    return raw


def _parcel(raw: Any, path: str) -> Parcel:
    fields = _mapping(raw, path)
    _only(fields, path, {"weight_g", "length_mm", "width_mm", "height_mm"})
    values = {
        k: _positive_int(fields.get(k), f"{path}.{k}")
        for k in ("weight_g", "length_mm", "width_mm", "height_mm")
    }
    return Parcel(**values)


def _address(raw: Any, path: str) -> Address:
    fields = _mapping(raw, path)
    _only(fields, path, {"country", "postal_code", "city", "lines", "name"})
    country = str(fields.get("country", ""))
    if len(country) != 2 or not country.isalpha():
        raise CarrierConfigError(f"{path}.country", "expected an ISO 3166 alpha-2 code (FR)")
    lines = fields.get("lines", [])
    if not isinstance(lines, list):
        raise CarrierConfigError(f"{path}.lines", "expected a list of address lines")
    return Address(
        country.upper(),
        str(fields.get("postal_code", "")),
        str(fields.get("city", "")),
        tuple(str(x) for x in lines),
        str(fields.get("name", "")),
    )


def _limits(raw: Any, path: str) -> HttpLimits:
    fields = _mapping(raw, path)
    _only(fields, path, {"per_s", "burst", "timeout_s", "max_attempts"})
    try:
        limits = HttpLimits(
            timeout_s=float(fields.get("timeout_s", 10.0)),
            max_attempts=int(fields.get("max_attempts", 3)),
            per_s=float(fields["per_s"]) if fields.get("per_s") else None,
            burst=float(fields.get("burst", 10.0)),
        )
    except (TypeError, ValueError):
        raise CarrierConfigError(
            path, "per_s, burst, timeout_s are numbers, max_attempts an integer"
        ) from None
    if limits.timeout_s <= 0 or limits.max_attempts < 1 or limits.burst <= 0:
        raise CarrierConfigError(path, "timeout_s and burst must be > 0, max_attempts ≥ 1")
    return limits


def _account(raw: Any, path: str) -> CarrierAccount:
    fields = _mapping(raw, path)
    _only(fields, path, _ACCOUNT_KEYS)
    kind = fields.get("kind")
    if kind not in KINDS:
        raise CarrierConfigError(f"{path}.kind", f"expected one of {KINDS}, got {kind!r}")
    name = str(fields.get("name") or kind)
    base_url = str(fields.get("base_url", ""))
    if not base_url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise CarrierConfigError(
            f"{path}.base_url", "expected https:// (plain http only on loopback, for the fakes)"
        )
    credentials = _mapping(fields.get("credentials", {}), f"{path}.credentials")
    _only(credentials, f"{path}.credentials", set(_CREDENTIALS[kind]))
    secrets = {
        k: _secret(credentials.get(k), f"{path}.credentials.{k}") for k in _CREDENTIALS[kind]
    }
    options = {
        k: fields[k]
        for k in ("services", "label_format", "label_mode", "days", "sub_account")
        if k in fields
    }
    return CarrierAccount(
        name, kind, base_url, secrets, _limits(fields.get("limits", {}), f"{path}.limits"), options
    )


def parse_carriers_config(raw: Any) -> CarriersConfig:
    """``raw`` is the ``carriers:`` mapping (``None`` = no carrier configured)."""
    if raw is None:
        return CarriersConfig()
    top = _mapping(raw, "carriers")
    _only(top, "carriers", _TOP_KEYS)
    accounts = top.get("accounts", [])
    if not isinstance(accounts, list):
        raise CarrierConfigError("carriers.accounts", "expected a list")
    parsed = tuple(_account(a, f"carriers.accounts[{i}]") for i, a in enumerate(accounts))
    names = [a.name for a in parsed]
    if len(set(names)) != len(names):
        raise CarrierConfigError("carriers.accounts", f"carrier names must be unique: {names}")
    levels: dict[str, ServiceLevel] = {}
    for channel, level in _mapping(
        top.get("service_levels", {}), "carriers.service_levels"
    ).items():
        path = f"carriers.service_levels.{channel}"
        fields = _mapping(level, path)
        _only(fields, path, {"service_level", "max_days"})
        if fields.get("service_level", "standard") not in LEVELS:
            raise CarrierConfigError(f"{path}.service_level", f"expected one of {LEVELS}")
        max_days = fields.get("max_days")
        levels[str(channel)] = ServiceLevel(
            str(fields.get("service_level", "standard")),
            None if max_days is None else _positive_int(max_days, f"{path}.max_days"),
        )
    try:
        timeout = float(top.get("quote_timeout_s", 10.0))
    except (TypeError, ValueError):
        raise CarrierConfigError("carriers.quote_timeout_s", "expected seconds") from None
    return CarriersConfig(
        accounts=parsed,
        quote_timeout_s=timeout,
        currency=str(top["currency"]) if top.get("currency") else None,
        max_parcel_weight_g=_positive_int(
            top.get("max_parcel_weight_g", 30_000), "carriers.max_parcel_weight_g"
        ),
        default_parcel=_parcel(top["default_parcel"], "carriers.default_parcel")
        if top.get("default_parcel")
        else None,
        parcels={
            str(sku): _parcel(p, f"carriers.parcels.{sku}")
            for sku, p in _mapping(top.get("parcels", {}), "carriers.parcels").items()
        },
        ship_from={
            str(loc): _address(a, f"carriers.ship_from.{loc}")
            for loc, a in _mapping(top.get("ship_from", {}), "carriers.ship_from").items()
        },
        service_levels=levels,
    )


def build_carriers(config: CarriersConfig, session: aiohttp.ClientSession) -> list[Carrier]:
    """One client per configured account, sharing ``session``."""
    from connectors.carriers.chronopost.client import ChronopostCarrier
    from connectors.carriers.dhl.client import DhlCarrier
    from connectors.carriers.ups.client import UpsCarrier

    carriers: list[Carrier] = []
    for a in config.accounts:
        secret = {k: v.reveal() for k, v in a.credentials.items()}
        services = tuple(str(s) for s in a.options.get("services", ()))
        if a.kind == "ups":
            carriers.append(
                UpsCarrier(
                    session,
                    a.base_url,
                    client_id=secret["client_id"],
                    client_secret=secret["client_secret"],
                    account=secret["account"],
                    name=a.name,
                    limits=a.limits,
                    services=services,
                )
            )
        elif a.kind == "dhl":
            carriers.append(
                DhlCarrier(
                    session,
                    a.base_url,
                    api_key=secret["api_key"],
                    api_secret=secret["api_secret"],
                    account=secret["account"],
                    name=a.name,
                    limits=a.limits,
                    label_format=str(a.options.get("label_format", "pdf")),
                    services=services,
                )
            )
        else:
            carriers.append(
                ChronopostCarrier(
                    session,
                    a.base_url,
                    account=secret["account"],
                    password=secret["password"],
                    name=a.name,
                    limits=a.limits,
                    services=services,
                    sub_account=str(a.options.get("sub_account", "")),
                    label_mode=str(a.options.get("label_mode", "PDF")),
                    days={str(k): int(v) for k, v in (a.options.get("days") or {}).items()},
                )
            )
    return carriers
