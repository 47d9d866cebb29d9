"""Where an order goes: postal-code centroids and great-circle distances. Pure, no network.

The centroids come from ``data/postal_centroids.csv``, shipped with the package and built
from GeoNames data by ``data/build_centroids.py`` (see the README, "Routing rules", for
the sources, licence and precision). A postal code is placed at the centroid of its longest
known prefix: FR département (2 digits), DE/BE/NL 2 then 1 digit, ES province (2 digits),
IT 3 then 2 digits, GB outward code then postcode area, US 3-digit ZIP prefix.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["centroid", "destination", "distance_km", "normal_postal_code"]

EARTH_RADIUS_KM = 6371.0088
_NOT_CODE = re.compile(r"[\s\-.]")
_GB = re.compile(r"^([A-Z]{1,2})\d[A-Z\d]?")


def normal_postal_code(code: str) -> str:
    """Upper case, without spaces, dashes or dots: ``"sw1a 1aa"`` -> ``"SW1A1AA"``."""
    return _NOT_CODE.sub("", code).upper()


@cache
def _table() -> dict[tuple[str, str], tuple[float, float]]:
    text = (
        resources.files("streams.orders")
        .joinpath("data/postal_centroids.csv")
        .read_text(encoding="utf-8")
    )
    rows = csv.reader(line for line in text.splitlines() if line and not line.startswith("#"))
    return {(r[0], r[1]): (float(r[2]), float(r[3])) for r in rows}


def _candidates(country: str, code: str) -> list[str]:
    """Prefixes of ``code`` to try, longest first."""
    if country == "GB":
        m = _GB.match(code)
        if m is None:
            return []
        outward = code[:-3] if len(code) >= 5 else code
        return [outward, m.group(1)]
    return [code[:n] for n in (3, 2, 1) if len(code) >= n]


def centroid(country: str | None, postal_code: str | None) -> tuple[float, float] | None:
    """(lat, lon) of the postal code's area, or None when the table does not place it."""
    if not country or not postal_code:
        return None
    country = country.upper()
    code = normal_postal_code(postal_code)
    table = _table()
    for prefix in _candidates(country, code):
        found = table.get((country, prefix))
        if found is not None:
            return found
    return None


def destination(ship_to: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """The ship-to's coordinates: its lat/lon when given, else its postal-code centroid."""
    if not ship_to:
        return None
    lat, lon = ship_to.get("lat"), ship_to.get("lon")
    if lat is not None and lon is not None:
        return (float(lat), float(lon))
    return centroid(ship_to.get("country"), ship_to.get("postal_code"))


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance between two (lat, lon) points, in km."""
    lat1, lon1 = math.radians(a[0]), math.radians(a[1])
    lat2, lon2 = math.radians(b[0]), math.radians(b[1])
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
