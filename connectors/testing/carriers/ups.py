"""A fake UPS (OAuth2 client credentials, Rating, Shipping, Pickup, Tracking), faithful to
``connectors/carriers/ups/README.md``: strings for amounts and weights, v2409 arrays, errors as
``{"response":{"errors":[{code,message}]}}``, 429 ``10429`` without ``Retry-After``, expired
tokens 401 ``250002``, Tracking refusing a request without ``transId``/``transactionSrc``.

Run alone: ``python -m connectors.testing.carriers.ups``.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import string
import time
from typing import Any

from aiohttp import web

from connectors.testing.base import serve_forever
from connectors.testing.carriers.base import FakeCarrier, FakeService, FakeShipment, zpl_label

_ALNUM = string.ascii_uppercase + string.digits


def ups_errors(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"response": {"errors": [{"code": code, "message": message}]}}, status=status
    )


class FakeUps(FakeCarrier):
    services = (
        FakeService("11", "UPS Standard", 690, 110, 3),
        FakeService("65", "UPS Saver", 1490, 180, 1),
        FakeService("07", "UPS Worldwide Express", 2190, 250, 1),
    )

    def __init__(self, *, token_ttl_s: int = 14399, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client_id = "ups-client-" + secrets.token_hex(4)
        self.client_secret = secrets.token_hex(16)
        self.account = "A1B2C3"
        self.token_ttl_s = token_ttl_s
        self.tokens: dict[str, float] = {}  # access token → expiry (monotonic)
        self.tokens_issued = 0

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/security/v1/oauth/token", self._token),
            web.post("/api/rating/{version}/{option}", self._rate),
            web.post("/api/shipments/{version}/ship", self._ship),
            web.post("/api/pickupcreation/{version}/pickup", self._pickup),
            web.get("/api/track/v1/details/{number}", self._track),
        ]

    # ---- error shapes ----------------------------------------------------------------
    def throttled(self, retry_after: float) -> web.Response:
        return ups_errors(429, "10429", "Too Many Requests")  # no Retry-After header

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        if status == 429:
            return self.throttled(1.0)
        return ups_errors(status, "10500" if status >= 500 else "10400", "Service unavailable")

    def expire_tokens(self) -> None:
        self.tokens.clear()

    # ---- auth ------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return ups_errors(401, "10400", "Invalid/Missing Authorization Header")
        if not secrets.compare_digest(header[6:], expected):
            return ups_errors(401, "10401", "ClientId is Invalid")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return ups_errors(400, "10400", "Invalid grant_type")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_ttl_s
        self.tokens_issued += 1
        return web.json_response(
            {
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "client_id": self.client_id,
                "access_token": token,
                "scope": "",
                "expires_in": str(self.token_ttl_s),
                "refresh_count": "0",
                "status": "approved",
            }
        )

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        expiry = self.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        return expiry is not None and time.monotonic() < expiry

    def _invalid(self, shipment: dict[str, Any]) -> bool:
        to = ((shipment.get("ShipTo") or {}).get("Address")) or {}
        return str(to.get("PostalCode", "")) in self.invalid_postal_codes

    @staticmethod
    def _weight_g(package: dict[str, Any]) -> int:
        weight = package.get("PackageWeight") or {}
        value = float(weight.get("Weight", "0"))  # a string in UPS JSON
        unit = (weight.get("UnitOfMeasurement") or {}).get("Code", "LBS")
        return int(value * (1000 if unit == "KGS" else 453.59237))

    # ---- rating ----------------------------------------------------------------------
    async def _rate(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return ups_errors(401, "250002", "Invalid Authentication Information.")
        body = await request.json()
        shipment = (body.get("RateRequest") or {}).get("Shipment") or {}
        packages = shipment.get("Package") or []
        packages = packages if isinstance(packages, list) else [packages]
        if not packages or not shipment.get("ShipTo"):
            return ups_errors(400, "111100", "Missing or invalid shipment")
        if self._invalid(shipment):
            return ups_errors(400, "111285", "The postal code is invalid for the country.")
        weight = sum(self._weight_g(p) for p in packages)
        option = request.match_info["option"]
        wanted = ((shipment.get("Service") or {}).get("Code")) if option == "Rate" else None
        rated = [
            {
                "Service": {"Code": s.code, "Description": ""},
                "BillingWeight": {
                    "UnitOfMeasurement": {"Code": "KGS"},
                    "Weight": f"{weight / 1000:.1f}",
                },
                "TotalCharges": {
                    "CurrencyCode": self.currency,
                    "MonetaryValue": f"{self.price(s, weight) / 100:.2f}",
                },
                "GuaranteedDelivery": {"BusinessDaysInTransit": str(s.days)},
                "RatedPackage": [{"Weight": f"{self._weight_g(p) / 1000:.1f}"} for p in packages],
            }
            for s in self.services
            if wanted in (None, s.code)
        ]
        return web.json_response(
            {
                "RateResponse": {
                    "Response": {"ResponseStatus": {"Code": "1", "Description": "Success"}},
                    "RatedShipment": rated,
                }
            }
        )

    # ---- shipping --------------------------------------------------------------------
    async def _ship(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return ups_errors(401, "250002", "Invalid Authentication Information.")
        body = (await request.json()).get("ShipmentRequest") or {}
        shipment = body.get("Shipment") or {}
        packages = shipment.get("Package") or []
        packages = packages if isinstance(packages, list) else [packages]
        service = self.service(str((shipment.get("Service") or {}).get("Code", "")))
        if (
            not (body.get("Request") or {}).get("RequestOption")
            or not shipment.get("Shipper")
            or not shipment.get("ShipTo")
            or not packages
            or any(not (p.get("Packaging") or {}).get("Code") for p in packages)
        ):
            return ups_errors(400, "120100", "Missing or invalid shipment request")
        if service is None:
            return ups_errors(400, "121100", "The requested service is invalid from the origin")
        if self._invalid(shipment):
            return ups_errors(400, "120802", "Address Validation Error on ShipTo address")
        reference = str(
            ((body.get("Request") or {}).get("TransactionReference") or {}).get(
                "CustomerContext", ""
            )
        )
        weight = sum(self._weight_g(p) for p in packages)
        numbers = ["1Z" + "".join(self.rng.choice(_ALNUM) for _ in range(16)) for _ in packages]
        cost = self.price(service, weight)
        zpl = [zpl_label(n, reference) for n in numbers]
        self.store(
            FakeShipment(
                numbers[0],
                service.code,
                reference,
                len(packages),
                cost,
                self.currency,
                b"".join(zpl),
            ),
            "M",
        )
        return web.json_response(
            {
                "ShipmentResponse": {
                    "Response": {"ResponseStatus": {"Code": "1", "Description": "Success"}},
                    "ShipmentResults": {
                        "ShipmentIdentificationNumber": numbers[0],
                        "ShipmentCharges": {
                            "TotalCharges": {
                                "CurrencyCode": self.currency,
                                "MonetaryValue": f"{cost / 100:.2f}",
                            }
                        },
                        "BillingWeight": {
                            "UnitOfMeasurement": {"Code": "KGS"},
                            "Weight": f"{weight / 1000:.1f}",
                        },
                        "PackageResults": [
                            {
                                "TrackingNumber": n,
                                "ShippingLabel": {
                                    "ImageFormat": {"Code": "ZPL"},
                                    "GraphicImage": base64.b64encode(z).decode(),
                                },
                            }
                            for n, z in zip(numbers, zpl, strict=True)
                        ],
                    },
                }
            }
        )

    # ---- pickup ----------------------------------------------------------------------
    async def _pickup(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return ups_errors(401, "250002", "Invalid Authentication Information.")
        body = (await request.json()).get("PickupCreationRequest") or {}
        day = str((body.get("PickupDateInfo") or {}).get("PickupDate", ""))
        if len(day) != 8 or not day.isdigit():
            return ups_errors(400, "9560131", "Invalid pickup date")
        prn = "".join(self.rng.choice(_ALNUM) for _ in range(11))
        self.pickups.append({"prn": prn, "day": day, "pieces": body.get("PickupPiece")})
        return web.json_response(
            {
                "PickupCreationResponse": {
                    "Response": {"ResponseStatus": {"Code": "1", "Description": "Success"}},
                    "PRN": prn,
                }
            }
        )

    # ---- tracking --------------------------------------------------------------------
    async def _track(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return ups_errors(401, "250002", "Invalid Authentication Information.")
        if not request.headers.get("transId") or not request.headers.get("transactionSrc"):
            return ups_errors(400, "TV0003", "Missing transId or transactionSrc header")
        number = request.match_info["number"]
        shipment = self.shipments.get(number)
        if shipment is None:
            return ups_errors(404, "TW0001", "Tracking Information Not Found")
        activity = [
            {
                "date": time.strftime("%Y%m%d", time.gmtime(at)),
                "time": time.strftime("%H%M%S", time.gmtime(at)),
                "gmtDate": time.strftime("%Y%m%d", time.gmtime(at)),
                "gmtTime": time.strftime("%H:%M:%S", time.gmtime(at)),
                "gmtOffset": "+00:00",
                "status": {
                    "type": code.split("/")[0],
                    "code": "",
                    "statusCode": code.split("/")[1] if "/" in code else "",
                    "description": _UPS_WORDS.get(code.split("/")[0], "Update"),
                },
            }
            for code, at in reversed(shipment.events)  # newest first
        ]
        return web.json_response(
            {
                "trackResponse": {
                    "shipment": [
                        {
                            "inquiryNumber": number,
                            "package": [{"trackingNumber": number, "activity": activity}],
                        }
                    ]
                }
            }
        )


_UPS_WORDS = {
    "M": "Shipper created a label",
    "P": "Pickup Scan",
    "I": "In Transit",
    "D": "Delivered",
    "X": "Exception: address unknown",
    "MV": "Voided",
}


if __name__ == "__main__":
    fake = FakeUps()
    asyncio.run(serve_forever(fake, f"fake UPS (client id {fake.client_id})"))
