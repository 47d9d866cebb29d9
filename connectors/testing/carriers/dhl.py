"""A fake DHL Express (MyDHL API) faithful to ``connectors/carriers/dhl/README.md``: HTTP Basic
and ``x-version`` on every call, 201 on create, 10-digit AWBs and ``JD01…`` piece ids, base64
PDF or ZPL labels per ``encodingFormat``, no void route, problem JSON with DHL's numbers
(``420504: …`` business rules as 400, schema errors as 422), 429 as problem JSON.

Run alone: ``python -m connectors.testing.carriers.dhl``.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from typing import Any

from aiohttp import web

from connectors.testing.base import serve_forever
from connectors.testing.carriers.base import (
    FakeCarrier,
    FakeService,
    FakeShipment,
    pdf_label,
    zpl_label,
)


def problem(status: int, detail: str, title: str = "") -> web.Response:
    return web.json_response(
        {
            "instance": "/mydhlapi",
            "detail": detail,
            "title": title or "Bad request",
            "message": title or "Bad request",
            "status": str(status),
        },
        status=status,
        content_type="application/problem+json",
    )


class FakeDhl(FakeCarrier):
    services = (
        FakeService("N", "EXPRESS DOMESTIC", 1190, 150, 1),
        FakeService("U", "EXPRESS WORLDWIDE EU", 1890, 200, 2),
        FakeService("W", "ECONOMY SELECT", 790, 120, 4),
    )
    required_version = "3.1.0"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = "dhl-key-" + secrets.token_hex(4)
        self.api_secret = secrets.token_hex(12)
        self.account = "123456789"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/rates", self._rates),
            web.post("/shipments", self._ship),
            web.post("/pickups", self._pickup),
            web.get("/tracking", self._track),
        ]

    def throttled(self, retry_after: float) -> web.Response:
        response = problem(429, "Too many requests: rate limit exceeded", "Too Many Requests")
        response.headers["Retry-After"] = str(int(retry_after) or 1)
        return response

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0 if retry_after is None else retry_after)
        return problem(status, "999: Process failure occurred. Process ID associated", "Error")

    def _refuse_auth(self, request: web.Request) -> web.Response | None:
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic ") or not secrets.compare_digest(header[6:], expected):
            return problem(401, "Invalid credentials", "Unauthorized")
        if not request.headers.get("x-version"):
            return problem(400, "Missing required header x-version", "Bad request")
        return None

    def _account_ok(self, body: dict[str, Any]) -> bool:
        return any(a.get("number") == self.account for a in body.get("accounts") or [])

    @staticmethod
    def _missing(body: dict[str, Any], paths: list[str]) -> web.Response | None:
        for path in paths:
            node: Any = body
            for part in path.split("."):
                if not isinstance(node, dict) or part not in node:
                    return problem(
                        422,
                        f"#/{path.replace('.', '/')}: required key [{part}] not found",
                        "Unprocessable entity",
                    )
                node = node[part]
        return None

    def _invalid(self, details: dict[str, Any]) -> bool:
        postal = details.get("postalAddress", details)
        return str(postal.get("postalCode", "")) in self.invalid_postal_codes

    @staticmethod
    def _weight_g(packages: list[dict[str, Any]]) -> int:
        return int(sum(float(p.get("weight", 0)) for p in packages) * 1000)

    async def _rates(self, request: web.Request) -> web.Response:
        if (refused := self._refuse_auth(request)) is not None:
            return refused
        body = await request.json()
        missing = self._missing(
            body,
            [
                "customerDetails.shipperDetails.countryCode",
                "customerDetails.receiverDetails.countryCode",
                "plannedShippingDateAndTime",
                "packages",
            ],
        )
        if missing is not None:
            return missing
        if not self._account_ok(body):
            return problem(400, "1001: The account number is not found or invalid")
        if self._invalid(body["customerDetails"]["receiverDetails"]):
            return problem(400, "420504: The receiver postal code is invalid for the country")
        weight = self._weight_g(body["packages"])
        return web.json_response(
            {
                "products": [
                    {
                        "productName": s.name,
                        "productCode": s.code,
                        "localProductCode": s.code,
                        "weight": {
                            "volumetric": 0,
                            "provided": weight / 1000,
                            "unitOfMeasurement": "metric",
                        },
                        "totalPrice": [
                            {
                                "currencyType": "BILLC",
                                "priceCurrency": self.currency,
                                "price": self.price(s, weight) / 100,
                            }
                        ],
                        "deliveryCapabilities": {"totalTransitDays": s.days},
                    }
                    for s in self.services
                ]
            }
        )

    async def _ship(self, request: web.Request) -> web.Response:
        if (refused := self._refuse_auth(request)) is not None:
            return refused
        body = await request.json()
        missing = self._missing(
            body,
            [
                "plannedShippingDateAndTime",
                "pickup.isRequested",
                "productCode",
                "accounts",
                "customerDetails.shipperDetails.postalAddress.countryCode",
                "customerDetails.receiverDetails.postalAddress.countryCode",
                "customerDetails.receiverDetails.postalAddress.addressLine1",
                "content.packages",
            ],
        )
        if missing is not None:
            return missing
        if not self._account_ok(body):
            return problem(400, "1001: The account number is not found or invalid")
        service = self.service(str(body["productCode"]))
        if service is None:
            return problem(400, "7008: The requested product is not available")
        if self._invalid(body["customerDetails"]["receiverDetails"]):
            return problem(400, "420504: The receiver postal code is invalid for the country")
        packages = body["content"]["packages"]
        awb = str(self.rng.randrange(10**9, 10**10))
        reference = str(body["content"].get("description", ""))
        fmt = str((body.get("outputImageProperties") or {}).get("encodingFormat", "pdf")).lower()
        label = zpl_label(awb, reference) if fmt == "zpl" else pdf_label("DHL", awb, reference)
        cost = self.price(service, self._weight_g(packages))
        self.store(
            FakeShipment(awb, service.code, reference, len(packages), cost, self.currency, label),
            "PU",
        )
        response = web.json_response(
            {
                "shipmentTrackingNumber": awb,
                "packages": [
                    {
                        "referenceNumber": i + 1,
                        "trackingNumber": f"JD01{self.rng.randrange(10**15, 10**16)}",
                    }
                    for i in range(len(packages))
                ],
                "documents": [
                    {
                        "typeCode": "label",
                        "imageFormat": fmt.upper(),
                        "content": base64.b64encode(label).decode(),
                    }
                ],
                "shipmentCharges": [
                    {"currencyType": "BILLC", "priceCurrency": self.currency, "price": cost / 100}
                ],
            },
            status=201,
        )
        response.headers["Message-Reference"] = request.headers.get("Message-Reference", "")
        return response

    async def _pickup(self, request: web.Request) -> web.Response:
        if (refused := self._refuse_auth(request)) is not None:
            return refused
        body = await request.json()
        missing = self._missing(
            body,
            [
                "plannedPickupDateAndTime",
                "accounts",
                "customerDetails.shipperDetails.postalAddress",
                "shipmentDetails",
            ],
        )
        if missing is not None:
            return missing
        number = f"PRG{self.rng.randrange(10**11, 10**12)}"
        self.pickups.append({"number": number, "at": body["plannedPickupDateAndTime"]})
        return web.json_response(
            {
                "dispatchConfirmationNumbers": [number],
                "readyByTime": "10:00",
                "nextPickupDate": body["plannedPickupDateAndTime"][:10],
                "warnings": [],
            },
            status=201,
        )

    async def _track(self, request: web.Request) -> web.Response:
        if (refused := self._refuse_auth(request)) is not None:
            return refused
        numbers = request.query.getall("shipmentTrackingNumber", [])
        if not numbers or len(numbers) > 200:
            return problem(400, "Between 1 and 200 shipmentTrackingNumber values are required")
        found = [self.shipments[n] for n in numbers if n in self.shipments]
        if not found:
            return problem(404, "No data found", "Not found")
        return web.json_response(
            {
                "shipments": [
                    {
                        "shipmentTrackingNumber": s.number,
                        "status": "Success",
                        "productCode": s.service,
                        "events": [  # oldest first
                            {
                                "date": time.strftime("%Y-%m-%d", time.gmtime(at)),
                                "time": time.strftime("%H:%M:%S", time.gmtime(at)),
                                "GMTOffset": "+00:00",
                                "typeCode": code,
                                "description": _DHL_WORDS.get(code, "Update"),
                            }
                            for code, at in s.events
                        ],
                    }
                    for s in found
                ]
            }
        )


_DHL_WORDS = {
    "PU": "Shipment picked up",
    "AF": "Arrived at facility",
    "WC": "With courier",
    "OK": "Delivered",
    "CA": "Closed on arrival",
    "RD": "Refused delivery",
    "MS": "Mis-sorted",
}


if __name__ == "__main__":
    fake = FakeDhl()
    asyncio.run(serve_forever(fake, f"fake DHL Express (API key {fake.api_key})"))
