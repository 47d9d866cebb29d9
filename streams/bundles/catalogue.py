"""The bundle catalogue: the ``bundles:`` key of the ledger's YAML (the ledger ignores it).

```yaml
bundles:
  - sku: DESK-SET          # the bundle's own SKU: never stocked, never counted
    version: 2             # the definition's version (recorded on the order's lines)
    components: {DESK-1: 1, CHAIR-1: 2}
    channels:              # optional: another composition on some channels
      marketplace: {DESK-1: 1, CHAIR-1: 1}
```

A definition applies to orders placed after the worker (or the connectors) read it: an
order's lines are expanded once, when it is placed, and keep their components whatever the
file says later. A component cannot itself be a bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Bundle", "BundleConfigError", "Catalogue", "load_catalogue", "parse_catalogue"]

MAX_PER_BUNDLE = 1000
_KEYS = {"sku", "version", "components", "channels"}


class BundleConfigError(ValueError):
    """A mistake under ``bundles:``; ``path`` names the key (``bundles[1].components``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Bundle:
    sku: str
    version: int
    components: Mapping[str, int]  # component SKU -> units per bundle
    channels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def for_channel(self, channel: str | None) -> Mapping[str, int]:
        """The composition sold on ``channel`` (its own, else the default)."""
        if channel is not None and channel in self.channels:
            return self.channels[channel]
        return self.components

    def every_component(self) -> set[str]:
        found = set(self.components)
        for comp in self.channels.values():
            found |= set(comp)
        return found


@dataclass(frozen=True)
class Catalogue:
    bundles: Mapping[str, Bundle] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.bundles)

    def get(self, sku: str) -> Bundle | None:
        return self.bundles.get(sku)

    def using(self, component: str) -> list[Bundle]:
        """The bundles ``component`` is part of (on any channel)."""
        return [b for b in self.bundles.values() if component in b.every_component()]

    def components(self) -> set[str]:
        found: set[str] = set()
        for bundle in self.bundles.values():
            found |= bundle.every_component()
        return found


def _composition(raw: Any, path: str) -> dict[str, int]:
    if not isinstance(raw, dict) or not raw:
        raise BundleConfigError(path, "a mapping of component SKU to units per bundle, e.g. {A: 2}")
    out: dict[str, int] = {}
    for sku, qty in raw.items():
        if not isinstance(sku, str) or not sku.strip():
            raise BundleConfigError(path, f"component {sku!r}: a non-empty SKU")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_PER_BUNDLE:
            raise BundleConfigError(
                f"{path}.{sku}", f"{qty!r}: whole units per bundle, 1 to {MAX_PER_BUNDLE}"
            )
        out[sku] = qty
    return out


def parse_catalogue(raw: Any) -> Catalogue:
    """``raw``: the value of the ``bundles:`` key (None: no bundles)."""
    if raw is None:
        return Catalogue()
    if not isinstance(raw, list):
        raise BundleConfigError("bundles", "a list of {sku, version, components, channels}")
    bundles: dict[str, Bundle] = {}
    for i, item in enumerate(raw):
        path = f"bundles[{i}]"
        if not isinstance(item, dict):
            raise BundleConfigError(path, "a mapping {sku, version, components, channels}")
        unknown = set(item) - _KEYS
        if unknown:
            raise BundleConfigError(
                f"{path}.{sorted(unknown)[0]}", f"unknown key; expected one of {sorted(_KEYS)}"
            )
        sku = item.get("sku")
        if not isinstance(sku, str) or not sku.strip():
            raise BundleConfigError(f"{path}.sku", "the bundle's SKU, a non-empty string")
        if sku in bundles:
            raise BundleConfigError(f"{path}.sku", f"{sku!r} is defined twice")
        version = item.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise BundleConfigError(f"{path}.version", f"{version!r}: a whole number from 1")
        components = _composition(item.get("components"), f"{path}.components")
        channels_raw = item.get("channels") or {}
        if not isinstance(channels_raw, dict):
            raise BundleConfigError(f"{path}.channels", "a mapping of channel to components")
        channels = {
            str(ch): _composition(comp, f"{path}.channels.{ch}")
            for ch, comp in channels_raw.items()
        }
        bundles[sku] = Bundle(sku, version, components, channels)
    for i, bundle in enumerate(bundles.values()):
        nested = sorted(bundle.every_component() & set(bundles))
        if nested:
            raise BundleConfigError(
                f"bundles[{i}].components",
                f"{nested[0]!r} is itself a bundle; list its components instead",
            )
    return Catalogue(bundles)


def load_catalogue(path: str | Path | None) -> Catalogue:
    """The ``bundles:`` key of the YAML file at ``path`` (the ledger's STOCKFLOW_CONFIG)."""
    if not path:
        return Catalogue()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BundleConfigError("<config>", f"cannot read {path}: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise BundleConfigError("<config>", "must be a mapping")
    return parse_catalogue((raw or {}).get("bundles"))
