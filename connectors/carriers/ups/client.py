"""UPS: OAuth2 client credentials, Rating (Shop), Shipping with a ZPL label, Pickup, Tracking.

Contract: ``connectors/carriers/ups/README.md``. Amounts and weights travel as strings; from
v2409 repeated elements are arrays, older answers a bare object for one item (both read).
The token is cached until a minute before ``expires_in``; a 401 ``250002`` (expired or
revoked) fetches a new one once.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final

import aiohttp

from connectors.carriers import statuses
from connectors.carriers.base import CarrierError, CarrierRefused, CarrierUnavailable
from connectors.carriers.http import Answer, CarrierHttp, HttpLimits
from connectors.carriers.model import Address, Label, Parcel, Rate, TrackingStatus
from connectors.carriers.units import cm, kg, minor_units, rate_id
from connectors.framework import redact

VERSION: Final = "v2409"
SERVICES: Final = {
    "01": "Next Day Air",
    "02": "2nd Day Air",
    "03": "Ground",
    "07": "Worldwide Express",
    "08": "Expedited",
    "11": "Standard",
    "12": "3 Day Select",
    "13": "Next Day Air Saver",
    "17": "Worldwide Economy DDU",
    "54": "Express Plus",
    "65": "Saver",
    "72": "Worldwide Economy DDP",
    "74": "Express 12:00",
}


def as_list(value: Any) -> list[Any]:
    """v2409 sends arrays; older versions a bare object for one item."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def ups_error(answer: Answer) -> tuple[str, str]:
    """(code, message) of ``{"response":{"errors":[{code,message}]}}``."""
    body = answer.json()
    errors = as_list((body.get("response") or {}).get("errors")) if isinstance(body, dict) else []
    if errors and isinstance(errors[0], dict):
        return str(errors[0].get("code", "")), str(errors[0].get("message", ""))
    return "", f"HTTP {answer.status}"


def _address(address: Address) -> dict[str, Any]:
    return {
        "AddressLine": list(address.lines) or [""],
        "City": address.city,
        "PostalCode": address.postal_code,
        "CountryCode": address.country,
    }


def _package(parcel: Parcel, key: str) -> dict[str, Any]:
    return {
        key: {"Code": "02"},
        "Dimensions": {
            "UnitOfMeasurement": {"Code": "CM"},
            "Length": str(cm(parcel.length_mm)),
            "Width": str(cm(parcel.width_mm)),
            "Height": str(cm(parcel.height_mm)),
        },
        "PackageWeight": {"UnitOfMeasurement": {"Code": "KGS"}, "Weight": kg(parcel.weight_g)},
    }


class UpsCarrier:
    name: str

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        client_id: str,
        client_secret: str,
        account: str,
        name: str = "ups",
        limits: HttpLimits | None = None,
        services: Sequence[str] = (),
        transaction_src: str = "stockflow",
    ) -> None:
        self.name = name
        self.http = CarrierHttp(name, session, base_url, limits)
        self._basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        redact.register_basic_auth(client_id, client_secret)
        self._account = account
        self._services = frozenset(services)
        self._src = transaction_src
        self._token = ""
        self._token_until = 0.0
        self._token_lock = asyncio.Lock()

    # ---- auth ------------------------------------------------------------------------
    async def _bearer(self, *, renew: bool = False) -> str:
        async with self._token_lock:
            if renew or not self._token or time.monotonic() >= self._token_until:
                answer = await self.http.request(
                    "POST",
                    "/security/v1/oauth/token",
                    safe=True,
                    headers={
                        "Authorization": f"Basic {self._basic}",
                        "x-merchant-id": self._account,
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                    data={"grant_type": "client_credentials"},
                )
                body = answer.json()
                if answer.status != 200 or not body.get("access_token"):
                    code, message = ups_error(answer)
                    raise CarrierError(
                        f"{self.name}: token refused ({answer.status} {code} {message}): check "
                        "the client id and secret of the UPS app"
                    )
                self._token = str(body["access_token"])
                redact.register(self._token)
                lifetime = float(body.get("expires_in") or 3600)
                self._token_until = time.monotonic() + max(0.0, lifetime - 60)
            return self._token

    async def _call(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> Answer:
        extra: Mapping[str, str] = kwargs.pop("headers", {})
        for renew in (False, True):
            headers = {
                "Authorization": f"Bearer {await self._bearer(renew=renew)}",
                "transId": uuid.uuid4().hex,
                "transactionSrc": self._src,
                **extra,
            }
            answer = await self.http.request(method, path, safe=safe, headers=headers, **kwargs)
            if answer.status == 401 and not renew:
                continue  # 250002: expired or revoked token, fetch another once
            return answer
        return answer

    def _refused(self, answer: Answer, what: str) -> CarrierError:
        code, message = ups_error(answer)
        if answer.status in (401, 403):
            return CarrierError(f"{self.name}: {what} not authorised ({code} {message})")
        return CarrierRefused(f"{self.name}: {what} refused: {code} {message}", code)

    # ---- rates -----------------------------------------------------------------------
    async def rates(
        self, ship_from: Address, ship_to: Address, parcels: Sequence[Parcel]
    ) -> list[Rate]:
        body = {
            "RateRequest": {
                "Request": {"TransactionReference": {"CustomerContext": "rates"}},
                "Shipment": {
                    "Shipper": {"ShipperNumber": self._account, "Address": _address(ship_from)},
                    "ShipFrom": {"Address": _address(ship_from)},
                    "ShipTo": {"Address": _address(ship_to)},
                    "PaymentDetails": {
                        "ShipmentCharge": [
                            {"Type": "01", "BillShipper": {"AccountNumber": self._account}}
                        ]
                    },
                    "Package": [_package(p, "PackagingType") for p in parcels],
                },
            }
        }
        answer = await self._call(
            "POST",
            f"/api/rating/{VERSION}/Shop?additionalinfo=timeintransit",
            safe=True,
            json=body,
        )
        if answer.status != 200:
            raise self._refused(answer, "rating")
        rated = as_list((answer.json().get("RateResponse") or {}).get("RatedShipment"))
        rates = []
        for shipment in rated:
            service = str((shipment.get("Service") or {}).get("Code", ""))
            if self._services and service not in self._services:
                continue
            charges = (shipment.get("NegotiatedRateCharges") or {}).get("TotalCharge") or (
                shipment.get("TotalCharges") or {}
            )
            days = (shipment.get("GuaranteedDelivery") or {}).get("BusinessDaysInTransit")
            currency = str(charges.get("CurrencyCode", ""))
            rates.append(
                Rate(
                    carrier=self.name,
                    service=service,
                    amount_minor=minor_units(charges.get("MonetaryValue", "0"), currency),
                    currency=currency,
                    days=int(days) if days not in (None, "") else None,
                    rate_id=rate_id(self.name, service, ship_from, ship_to, parcels),
                )
            )
        return rates

    # ---- shipping --------------------------------------------------------------------
    async def ship(
        self,
        rate: Rate,
        ship_from: Address,
        ship_to: Address,
        parcels: Sequence[Parcel],
        reference: str,
    ) -> Label:
        body = {
            "ShipmentRequest": {
                "Request": {
                    "RequestOption": "nonvalidate",
                    "TransactionReference": {"CustomerContext": reference},
                },
                "Shipment": {
                    "Description": reference,
                    "Shipper": {
                        "Name": ship_from.name or "Shipper",
                        "ShipperNumber": self._account,
                        "Address": _address(ship_from),
                    },
                    "ShipTo": {"Name": ship_to.name or "Recipient", "Address": _address(ship_to)},
                    "PaymentInformation": {
                        "ShipmentCharge": [
                            {"Type": "01", "BillShipper": {"AccountNumber": self._account}}
                        ]
                    },
                    "Service": {"Code": rate.service},
                    "Package": [_package(p, "Packaging") for p in parcels],
                },
                "LabelSpecification": {
                    "LabelImageFormat": {"Code": "ZPL"},
                    "LabelStockSize": {"Height": "6", "Width": "4"},
                },
            }
        }
        answer = await self._call("POST", f"/api/shipments/{VERSION}/ship", safe=False, json=body)
        if answer.status != 200:
            raise self._refused(answer, "shipment")
        results = (answer.json().get("ShipmentResponse") or {}).get("ShipmentResults") or {}
        packages = as_list(results.get("PackageResults"))
        if not packages:
            raise CarrierUnavailable(f"{self.name}: shipment answer without a package label")
        zpl = b"".join(
            base64.b64decode((p.get("ShippingLabel") or {}).get("GraphicImage", ""))
            for p in packages
        )
        charges = (results.get("NegotiatedRateCharges") or {}).get("TotalCharge") or (
            (results.get("ShipmentCharges") or {}).get("TotalCharges") or {}
        )
        currency = str(charges.get("CurrencyCode", rate.currency))
        return Label(
            carrier=self.name,
            service=rate.service,
            tracking_number=str(
                results.get("ShipmentIdentificationNumber") or packages[0].get("TrackingNumber")
            ),
            format="ZPL",
            data=zpl,
            cost_minor=minor_units(charges.get("MonetaryValue", "0"), currency),
            currency=currency,
        )

    # ---- pickup ----------------------------------------------------------------------
    async def pickup(self, ship_from: Address, day: date, parcels: int) -> str:
        body = {
            "PickupCreationRequest": {
                "RatePickupIndicator": "N",
                "Shipper": {
                    "Account": {
                        "AccountNumber": self._account,
                        "AccountCountryCode": ship_from.country,
                    }
                },
                "PickupDateInfo": {
                    "PickupDate": day.strftime("%Y%m%d"),
                    "ReadyTime": "0900",
                    "CloseTime": "1800",
                },
                "PickupAddress": {
                    "CompanyName": ship_from.name or "Shipper",
                    "ContactName": ship_from.name or "Shipper",
                    "AddressLine": list(ship_from.lines) or [""],
                    "City": ship_from.city,
                    "PostalCode": ship_from.postal_code,
                    "CountryCode": ship_from.country,
                    "ResidentialIndicator": "N",
                },
                "AlternateAddressIndicator": "N",
                "PickupPiece": [
                    {
                        "ServiceCode": "011",
                        "Quantity": str(parcels),
                        "DestinationCountryCode": ship_from.country,
                        "ContainerCode": "01",
                    }
                ],
                "PaymentMethod": "01",
            }
        }
        answer = await self._call(
            "POST", f"/api/pickupcreation/{VERSION}/pickup", safe=False, json=body
        )
        if answer.status != 200:
            raise self._refused(answer, "pickup")
        prn = (answer.json().get("PickupCreationResponse") or {}).get("PRN")
        if not prn:
            raise CarrierUnavailable(f"{self.name}: pickup answer without a PRN")
        return str(prn)

    # ---- tracking --------------------------------------------------------------------
    async def track(self, tracking_numbers: Sequence[str]) -> list[TrackingStatus]:
        """One GET per number (the API takes one inquiry number), run concurrently."""
        return list(await asyncio.gather(*(self._track_one(n) for n in tracking_numbers)))

    async def _track_one(self, number: str) -> TrackingStatus:
        answer = await self._call(
            "GET",
            f"/api/track/v1/details/{number}?locale=en_US&returnSignature=false",
            safe=True,
        )
        if answer.status == 404:
            return TrackingStatus(number, statuses.UNKNOWN, 0, "not found")
        if answer.status != 200:
            raise self._refused(answer, "tracking")
        shipments = as_list((answer.json().get("trackResponse") or {}).get("shipment"))
        packages = [p for s in shipments for p in as_list(s.get("package"))]
        activity = as_list(packages[0].get("activity")) if packages else []
        if not activity:  # 200 + warning TW0001 "Tracking Information Not Found"
            return TrackingStatus(number, statuses.UNKNOWN, 0, "not found")
        latest = max(
            activity,
            key=lambda a: (
                str(a.get("gmtDate", a.get("date", ""))),
                str(a.get("gmtTime", a.get("time", ""))),
            ),
        )
        status = latest.get("status") or {}
        fine = statuses.ups(str(status.get("type", "")), str(status.get("statusCode", "")))
        return TrackingStatus(
            tracking_number=number,
            status=statuses.fold(fine),
            at_ms=_ups_ms(latest),
            detail=f"{fine} {status.get('type', '')}/{status.get('statusCode', '')}: "
            f"{status.get('description', '')}".strip(),
        )


def _ups_ms(activity: Mapping[str, Any]) -> int:
    """``gmtDate`` ``YYYYMMDD`` + ``gmtTime`` ``HH:MM:SS`` (UTC) → epoch ms; 0 if absent."""
    from datetime import UTC, datetime

    day = str(activity.get("gmtDate") or "")
    clock = str(activity.get("gmtTime") or "00:00:00").replace(":", "")
    try:
        moment = datetime.strptime(day + clock[:6].ljust(6, "0"), "%Y%m%d%H%M%S")
    except ValueError:
        return 0
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)
