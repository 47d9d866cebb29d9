"""The channel's figure split across MSI sources by their locations' available units.

``split(figure, units, push_source)``, with ``units`` the available units of each source's
location (0 when the level does not name the location; below 0 counts as 0):

- figure ≤ Σ units: each source gets ``figure * units / Σ units`` rounded down, and the
  units left over (fewer than the sources) go one each to the sources with the largest
  remainders, ties to the ``push_source`` first, then by source code. Every share is at
  most its source's units and the shares sum to the figure exactly.
- figure > Σ units (the channel's figure counts locations no source is mapped to, or a
  level without locations): each source gets its units and the ``push_source`` also gets
  the rest, so Magento still sells the channel's figure.

The same input always gives the same split (no randomness, no dependence on dict order).
"""

from __future__ import annotations

from collections.abc import Mapping


def split(figure: int, units: Mapping[str, int], push_source: str) -> dict[str, int]:
    figure = max(0, figure)
    shares = {code: 0 for code in units}
    shares.setdefault(push_source, 0)
    capped = {code: max(0, int(u)) for code, u in units.items()}
    total = sum(capped.values())
    if figure >= total:
        shares.update(capped)
        shares[push_source] += figure - total
        return shares
    remainders = []
    for code, u in capped.items():
        shares[code], remainder = divmod(figure * u, total)
        remainders.append((-remainder, code != push_source, code))
    left = figure - sum(shares.values())
    for _, _, code in sorted(remainders)[:left]:
        shares[code] += 1
    return shares
