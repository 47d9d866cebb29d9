"""The ``fulfilment:`` top key of the configuration file: wave rules and bins.

Parsed once at start into frozen values; every mistake raises :class:`FulfilmentConfigError`
naming the key path. Unknown keys are refused (a typo would otherwise fall back silently).

```yaml
fulfilment:
  plan_every_seconds: 60        # `stockflow waves run`
  max_orders_per_wave: 40
  max_lines_per_wave: 120
  split_single_line: true       # single-line orders in their own waves
  group_by_zone: false          # zone = the bin's first part (A-01-02 -> A)
  express_channels: [shopify-express]   # orders of these channels are express (first)
  carriers:                     # the first whose countries hold the destination; then default
    - {name: chronopost, cutoff: "15:00", countries: [FR]}
    - {name: dhl, cutoff: "17:30"}
  bins:                         # location -> sku -> bin
    paris-wh: {chair: A-01-02, table: B-03-01}
  bins_file: /var/lib/wms/bins.csv      # optional CSV "location,sku,bin" (a WMS drops it)
```

A bin in ``bins_file`` wins over the same location and SKU in ``bins``. The wave service
reads the file again before a plan when it changed (:func:`reload_bins`); a file that
became unreadable keeps the bins read before (and says why).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CarrierRule",
    "FulfilmentConfig",
    "FulfilmentConfigError",
    "load_fulfilment",
    "parse",
    "reload_bins",
]

_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
MAX_BIN = 64


class FulfilmentConfigError(ValueError):
    """A mistake in the ``fulfilment:`` configuration (the message names the key)."""


@dataclass(frozen=True, slots=True)
class CarrierRule:
    name: str
    cutoff: str | None = None  # HH:MM local
    countries: frozenset[str] = frozenset()  # empty: any destination (a default)


@dataclass(frozen=True, slots=True)
class FulfilmentConfig:
    plan_every_seconds: int = 60
    max_orders_per_wave: int = 40
    max_lines_per_wave: int = 120
    split_single_line: bool = True
    group_by_zone: bool = False
    express_channels: frozenset[str] = frozenset()
    carriers: tuple[CarrierRule, ...] = ()
    bins: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (location, sku) -> bin
    static_bins: Mapping[tuple[str, str], str] = field(default_factory=dict)  # from `bins:`
    bins_file: Path | None = None
    bins_file_mtime: float | None = None

    def bin_of(self, location: str, sku: str) -> str | None:
        return self.bins.get((location, sku))

    def carrier_for(self, country: str | None) -> CarrierRule | None:
        """The first carrier serving ``country``; else the first without countries."""
        for rule in self.carriers:
            if country is not None and country in rule.countries:
                return rule
        return next((rule for rule in self.carriers if not rule.countries), None)


def _int(raw: Any, path: str, low: int = 1) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low:
        raise FulfilmentConfigError(f"{path}: {raw!r} is not a whole number of at least {low}")
    return raw


def _bool(raw: Any, path: str) -> bool:
    if not isinstance(raw, bool):
        raise FulfilmentConfigError(f"{path}: {raw!r} is not true or false")
    return raw


def _names(raw: Any, path: str) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise FulfilmentConfigError(f"{path}: a list of non-empty strings")
    return frozenset(raw)


def _bin(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_BIN:
        raise FulfilmentConfigError(f"{path}: {raw!r} is not a bin (1 to {MAX_BIN} characters)")
    return raw.strip()


def _carriers(raw: Any) -> tuple[CarrierRule, ...]:
    if not isinstance(raw, list):
        raise FulfilmentConfigError("fulfilment.carriers: a list of {name, cutoff, countries}")
    rules = []
    for i, item in enumerate(raw):
        path = f"fulfilment.carriers[{i}]"
        if not isinstance(item, dict):
            raise FulfilmentConfigError(f"{path}: a mapping {{name, cutoff, countries}}")
        unknown = sorted(set(item) - {"name", "cutoff", "countries"})
        if unknown:
            raise FulfilmentConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise FulfilmentConfigError(f"{path}.name: required, a carrier name")
        cutoff = item.get("cutoff")
        if cutoff is not None and (not isinstance(cutoff, str) or not _HHMM.fullmatch(cutoff)):
            raise FulfilmentConfigError(f'{path}.cutoff: {cutoff!r} is not HH:MM (e.g. "16:30")')
        countries = _names(item.get("countries", []), f"{path}.countries")
        rules.append(CarrierRule(name, cutoff, frozenset(c.upper() for c in countries)))
    return tuple(rules)


def read_bins_file(path: Path) -> dict[tuple[str, str], str]:
    """``location,sku,bin`` rows (a header row naming those columns is required)."""
    bins: dict[tuple[str, str], str] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"location", "sku", "bin"} - set(reader.fieldnames or ())
            if missing:
                raise FulfilmentConfigError(
                    f"fulfilment.bins_file {path}: column(s) {', '.join(sorted(missing))} missing;"
                    " the header must be location,sku,bin"
                )
            for n, row in enumerate(reader, start=2):
                where = f"fulfilment.bins_file {path} line {n}"
                location, sku = (row.get("location") or "").strip(), (row.get("sku") or "").strip()
                if not location or not sku:
                    raise FulfilmentConfigError(f"{where}: location and sku are required")
                bins[(location, sku)] = _bin(row.get("bin"), where)
    except OSError as exc:
        raise FulfilmentConfigError(f"fulfilment.bins_file: cannot read {path} ({exc})") from exc
    return bins


_KEYS = {
    "plan_every_seconds",
    "max_orders_per_wave",
    "max_lines_per_wave",
    "split_single_line",
    "group_by_zone",
    "express_channels",
    "carriers",
    "bins",
    "bins_file",
}


def parse(raw: Any, base: Path | None = None) -> FulfilmentConfig:
    """The ``fulfilment:`` mapping (None: the defaults, no bins, no carriers)."""
    if raw is None:
        return FulfilmentConfig()
    if not isinstance(raw, dict):
        raise FulfilmentConfigError("fulfilment: a mapping of wave rules and bins")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise FulfilmentConfigError(
            f"fulfilment: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    bins: dict[tuple[str, str], str] = {}
    given = raw.get("bins", {})
    if not isinstance(given, dict):
        raise FulfilmentConfigError("fulfilment.bins: a mapping location -> {sku: bin}")
    for location, skus in given.items():
        if not isinstance(skus, dict):
            raise FulfilmentConfigError(f"fulfilment.bins.{location}: a mapping sku -> bin")
        for sku, value in skus.items():
            bins[(str(location), str(sku))] = _bin(value, f"fulfilment.bins.{location}.{sku}")
    static = dict(bins)
    path, mtime = None, None
    if raw.get("bins_file"):
        path = Path(str(raw["bins_file"]))
        if base is not None and not path.is_absolute():
            path = base / path
        mtime = _mtime(path)
        bins.update(read_bins_file(path))
    return FulfilmentConfig(
        plan_every_seconds=_int(raw.get("plan_every_seconds", 60), "fulfilment.plan_every_seconds"),
        max_orders_per_wave=_int(
            raw.get("max_orders_per_wave", 40), "fulfilment.max_orders_per_wave"
        ),
        max_lines_per_wave=_int(
            raw.get("max_lines_per_wave", 120), "fulfilment.max_lines_per_wave"
        ),
        split_single_line=_bool(raw.get("split_single_line", True), "fulfilment.split_single_line"),
        group_by_zone=_bool(raw.get("group_by_zone", False), "fulfilment.group_by_zone"),
        express_channels=_names(raw.get("express_channels", []), "fulfilment.express_channels"),
        carriers=_carriers(raw.get("carriers", [])),
        bins=bins,
        static_bins=static,
        bins_file=path,
        bins_file_mtime=mtime,
    )


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def reload_bins(config: FulfilmentConfig) -> FulfilmentConfig:
    """``config`` with the bins file read again if it changed since it was read (the same
    object when it did not); FulfilmentConfigError when it changed and cannot be read."""
    if config.bins_file is None:
        return config
    mtime = _mtime(config.bins_file)
    if mtime == config.bins_file_mtime:
        return config
    bins = {**config.static_bins, **read_bins_file(config.bins_file)}
    return replace(config, bins=bins, bins_file_mtime=mtime)


def load_fulfilment(path: str | Path) -> FulfilmentConfig:
    """The ``fulfilment:`` part of the YAML configuration file at ``path``."""
    source = Path(path)
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FulfilmentConfigError(f"cannot read the configuration {source}: {exc}") from exc
    if not isinstance(document, dict):
        raise FulfilmentConfigError(f"{source}: the configuration must be a mapping")
    return parse(document.get("fulfilment"), source.parent)
