"""eMAG out: each SKU's quantity as its offer's stock, ``offer/save`` in batches of ≤ 50.

A save answered ``isError: false`` stored every offer of the batch. One answered
``isError: true`` may still have stored some of them (eMAG reports documentation problems
as errors while saving the offer), so the batch's offers are read back
(``product_offer/read``) and each decided on what eMAG now holds:

- holds the quantity → ``ok``;
- a message names the offer as part of an active campaign (eMAG locks the stock of an offer
  in a campaign) → ``refused`` and a drift alert on ``stock.alerts.v1`` (source
  ``campaign_lock``), no retry loop (pushed again on the next change or reconciliation);
- otherwise → ``failed`` with eMAG's messages (dead letter; the SKU stays dirty and is
  pushed again when eMAG accepts a push).

A throttle (429) or an outage retries the whole batch; rejected credentials fail it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from connectors.emag.client import EmagClient, EmagError
from connectors.emag.limits import MAX_ENTITIES
from connectors.emag.mapping import EmagMapping
from connectors.framework.drift import DriftAlert
from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    RejectedError,
    ThrottledError,
    UnavailableError,
)

log = logging.getLogger(__name__)

CAMPAIGN = re.compile(r"active campaign", re.IGNORECASE)


def _names(message: str, offer_id: int) -> bool:
    return re.search(rf"(?<!\d){offer_id}(?!\d)", message) is not None


class EmagPusher:
    def __init__(self, client: EmagClient, mapping: EmagMapping, *, max_batch: int = 50) -> None:
        self.client = client
        self.mapping = mapping
        self.channel = mapping.channel
        self.max_batch = max(1, min(max_batch, MAX_ENTITIES))
        self.alert: DriftAlert | None = None  # a campaign lock: drift alert (stock.alerts.v1)

    def observed(self, sku: str, quantity: int) -> None:
        return None  # absolute writes, no compare-and-set: nothing to remember

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        offers = {o: s for s in skus if (o := self.mapping.offer_for_sku(s)) is not None}
        held = await self.client.offer_stock(list(offers), self.mapping.warehouse_id)
        return {offers[o]: q for o, q in held.items() if o in offers}

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results = [
            PushResult(i, Outcome.REFUSED, f"SKU {i.sku} is not mapped to an eMAG offer")
            for i in items
            if self.mapping.offer_for_sku(i.sku) is None
        ]
        mapped = [i for i in items if self.mapping.offer_for_sku(i.sku) is not None]
        for start in range(0, len(mapped), self.max_batch):
            results.extend(await self._save(mapped[start : start + self.max_batch]))
        return results

    async def _save(self, items: list[PushItem]) -> list[PushResult]:
        stock = {self._offer(i): i.quantity for i in items}
        try:
            await self.client.save_stock(stock, self.mapping.warehouse_id)
        except (ThrottledError, UnavailableError) as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in items]
        except RejectedError as exc:
            return [PushResult(i, Outcome.FAILED, str(exc)) for i in items]
        except EmagError as exc:
            return await self._after_error(items, exc)
        return [PushResult(i, Outcome.OK) for i in items]

    async def _after_error(self, items: list[PushItem], error: EmagError) -> list[PushResult]:
        """``isError: true``: what did eMAG store? Read back, then decide per offer."""
        try:
            held = await self.client.offer_stock(
                [self._offer(i) for i in items], self.mapping.warehouse_id
            )
        except (ThrottledError, UnavailableError, EmagError) as exc:
            retry_after = getattr(exc, "retry_after", None)
            why = f"{error}; read back failed: {exc}"
            return [PushResult(i, Outcome.RETRY, why, retry_after) for i in items]
        except RejectedError as exc:
            return [PushResult(i, Outcome.FAILED, str(exc)) for i in items]
        results = []
        for item in items:
            offer = self._offer(item)
            mine = [m for m in error.messages if _names(m, offer)] or error.messages
            if held.get(offer) == item.quantity:
                if error.messages:
                    log.info(
                        "eMAG saved offer %d (sku %s) despite isError: %s",
                        offer,
                        item.sku,
                        "; ".join(mine),
                    )
                results.append(PushResult(item, Outcome.OK))
            elif any(CAMPAIGN.search(m) and _names(m, offer) for m in error.messages) or (
                len(items) == 1 and any(CAMPAIGN.search(m) for m in error.messages)
            ):
                if self.alert is not None:
                    await self.alert(
                        self.channel, item.sku, item.quantity, held.get(offer, 0), "campaign_lock"
                    )
                results.append(
                    PushResult(
                        item,
                        Outcome.REFUSED,
                        f"offer {offer} is in an active eMAG campaign; stock locked: "
                        + "; ".join(mine),
                    )
                )
            else:
                results.append(
                    PushResult(
                        item,
                        Outcome.FAILED,
                        f"eMAG refused offer {offer}: " + "; ".join(mine),
                        permanent=True,
                    )
                )
        return results

    def _offer(self, item: PushItem) -> int:
        offer = self.mapping.offer_for_sku(item.sku)
        assert offer is not None
        return offer
