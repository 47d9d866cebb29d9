"""What the fake carriers share, on top of the fake channels' server and switches
(``connectors.testing.base.FakeChannel``: ``fail_next``, ``down``, ``slow``, ``storm``):

- a rate limit (a token bucket of ``burst`` refilled at ``per_s``) answered in the carrier's
  own throttle shape;
- ``invalid_postal_codes``: an address with one of these postal codes is refused the way the
  carrier refuses an invalid address (the failure mode every carrier has);
- one store of shipments (labels, costs, tracking events) shared by label, pickup and tracking
  routes; ``progress(number, code)`` appends a tracking event with the carrier's own code;
- a price list per service: ``base_minor + per_kg_minor * kg`` (rounded up) and promised days.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connectors.framework.ratelimit import TokenBucket
from connectors.testing.base import FakeChannel, Handler


@dataclass(frozen=True)
class FakeService:
    code: str
    name: str
    base_minor: int
    per_kg_minor: int
    days: int


@dataclass
class FakeShipment:
    number: str
    service: str
    reference: str
    parcels: int
    cost_minor: int
    currency: str
    label: bytes
    events: list[tuple[str, float]] = field(default_factory=list)  # (carrier code, epoch s)


class FakeCarrier(FakeChannel):
    currency = "EUR"
    services: tuple[FakeService, ...] = ()

    def __init__(
        self,
        *,
        per_s: float = 50.0,
        burst: float = 50.0,
        services: tuple[FakeService, ...] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(seed=seed)
        if services is not None:
            self.services = services
        self.bucket = TokenBucket(burst, per_s)
        self.invalid_postal_codes: set[str] = {"00000"}
        self.shipments: dict[str, FakeShipment] = {}
        self.pickups: list[dict[str, Any]] = []
        self.throttled_requests = 0
        self.app.middlewares.append(self._limit)

    @web.middleware
    async def _limit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.bucket.wait_for(1.0) > 0:
            self.throttled_requests += 1
            return self.throttled(1.0)
        await self.bucket.acquire(1.0)
        return await handler(request)

    def price(self, service: FakeService, weight_g: int) -> int:
        return service.base_minor + service.per_kg_minor * max(1, -(-weight_g // 1000))

    def service(self, code: str) -> FakeService | None:
        return next((s for s in self.services if s.code == code), None)

    def progress(self, number: str, code: str, at: float | None = None) -> None:
        """The parcel ``number`` reached the carrier status ``code`` (e.g. delivered)."""
        self.shipments[number].events.append((code, time.time() if at is None else at))

    def store(self, shipment: FakeShipment, created_code: str) -> None:
        self.shipments[shipment.number] = shipment
        self.progress(shipment.number, created_code)


def pdf_label(carrier: str, number: str, reference: str) -> bytes:
    """A one-page PDF label with the tracking number as text and as a Code 128 barcode."""
    from reportlab.graphics.barcode import code128
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=(100 * mm, 150 * mm), invariant=True)
    page.setFont("Helvetica-Bold", 14)
    page.drawString(8 * mm, 138 * mm, carrier)
    page.setFont("Helvetica", 10)
    page.drawString(8 * mm, 130 * mm, f"Tracking {number}")
    page.drawString(8 * mm, 124 * mm, f"Ref {reference}")
    code128.Code128(number, barHeight=20 * mm, barWidth=0.35 * mm).drawOn(page, 8 * mm, 95 * mm)
    page.showPage()
    page.save()
    return out.getvalue()


def zpl_label(number: str, reference: str) -> bytes:
    """A 4x6 inch ZPL II label with a Code 128 barcode of the tracking number."""
    return (
        f"^XA^CF0,40^FO40,40^FDRef {reference}^FS^FO40,120^BY3^BCN,200,Y,N,N^FD{number}^FS^XZ\n"
    ).encode()
