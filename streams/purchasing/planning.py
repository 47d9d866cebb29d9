"""Placeholder of the planner the purchasing service calls (``compute_proposals``): demand,
forecasts and stock positions turned into Proposal-shaped dicts. The planning module that
replaces this file keeps the name and signature; until then no proposal is planned."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date
from typing import Any

from streams.kernel.settings import Settings
from streams.replenishment.model import ReplenishmentConfig

log = logging.getLogger("stockflow.purchasing")


async def compute_proposals(
    settings: Settings,
    config: ReplenishmentConfig,
    *,
    today: date,
    locations: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Proposals (status proposed, version 1) for ``locations`` (None: all) as of ``today``."""
    log.warning("replenishment planning is not installed in this build: nothing planned")
    return []
