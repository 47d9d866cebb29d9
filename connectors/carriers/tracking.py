"""Tracking polled per carrier: one ``track`` call per carrier for all its parcels, run
concurrently; a carrier that fails is reported and skipped (its parcels are asked again at the
next poll), the others' statuses still come back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connectors.carriers.base import Carrier, CarrierError
from connectors.carriers.model import TrackingStatus


@dataclass(frozen=True)
class Poll:
    statuses: Mapping[str, TrackingStatus]  # tracking number → its latest status
    failed: Mapping[str, str] = field(default_factory=dict)  # carrier → why


async def poll(
    carriers: Sequence[Carrier],
    numbers: Mapping[str, Sequence[str]],
    *,
    timeout_s: float = 30.0,
) -> Poll:
    """``numbers`` maps a carrier name to the tracking numbers it carries."""
    by_name = {c.name: c for c in carriers}

    async def one(name: str, wanted: Sequence[str]) -> list[TrackingStatus] | str:
        carrier = by_name.get(name)
        if carrier is None:
            return "not configured"
        try:
            return await asyncio.wait_for(carrier.track(wanted), timeout_s)
        except TimeoutError:
            return f"no answer within {timeout_s:g} s"
        except CarrierError as exc:
            return f"{type(exc).__name__}: {exc}"

    asked = [(name, list(wanted)) for name, wanted in numbers.items() if wanted]
    answers = await asyncio.gather(*(one(name, wanted) for name, wanted in asked))
    found: dict[str, TrackingStatus] = {}
    failed: dict[str, str] = {}
    for (name, _), answer in zip(asked, answers, strict=True):
        if isinstance(answer, str):
            failed[name] = answer
        else:
            found.update((s.tracking_number, s) for s in answer)
    return Poll(found, failed)
