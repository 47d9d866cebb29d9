"""DHL Express (MyDHL API): HTTP Basic (API key and secret), ``x-version`` on every call;
rates, shipment with a PDF (or ZPL) label, pickup, tracking. Contract:
``connectors/carriers/dhl/README.md``. Amounts and weights are JSON numbers; errors are
problem JSON whose ``detail`` starts with DHL's own number (``998: …``).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import aiohttp

from connectors.carriers import statuses
from connectors.carriers.base import CarrierError, CarrierRefused, CarrierUnavailable
from connectors.carriers.http import Answer, CarrierHttp, HttpLimits
from connectors.carriers.model import UNKNOWN, Address, Label, Parcel, Rate, TrackingStatus
from connectors.carriers.units import cm, minor_units, rate_id
from connectors.framework import redact

X_VERSION: Final = "3.1.0"
TRACK_BATCH: Final = 200  # GET /tracking takes up to 200 numbers


def problem(answer: Answer) -> tuple[str, str]:
    """(DHL number, text) of a problem JSON: ``"998: ShipTimeStamp…"`` → ``("998", …)``."""
    body = answer.json()
    detail = (
        str(body.get("detail") or body.get("message") or body.get("title") or "")
        if (isinstance(body, dict))
        else ""
    )
    number, _, text = detail.partition(": ")
    if number.isdigit():
        return number, text
    return str(answer.status), detail or f"HTTP {answer.status}"


def _planned(day: date | None = None) -> str:
    """``2026-03-24T13:00:00GMT+00:00``: DHL's own timestamp format (not ISO 8601)."""
    moment = (
        datetime.now(tz=UTC) + timedelta(hours=1)
        if day is None
        else datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%SGMT+00:00")


def _details(address: Address) -> dict[str, Any]:
    return {
        "postalCode": address.postal_code,
        "cityName": address.city,
        "countryCode": address.country,
    }


def _postal(address: Address) -> dict[str, Any]:
    lines = list(address.lines) or [""]
    postal: dict[str, Any] = {**_details(address), "addressLine1": lines[0]}
    if len(lines) > 1:
        postal["addressLine2"] = lines[1]
    return postal


def _packages(parcels: Sequence[Parcel]) -> list[dict[str, Any]]:
    return [
        {
            "weight": p.weight_g / 1000,
            "dimensions": {
                "length": cm(p.length_mm),
                "width": cm(p.width_mm),
                "height": cm(p.height_mm),
            },
        }
        for p in parcels
    ]


def _price(prices: Sequence[dict[str, Any]]) -> tuple[int, str] | None:
    """The billing-currency price (``BILLC``), else the first one listed."""
    chosen = next((p for p in prices if p.get("currencyType") == "BILLC"), None) or (
        prices[0] if prices else None
    )
    if chosen is None or chosen.get("price") is None:
        return None
    currency = str(chosen.get("priceCurrency", ""))
    return minor_units(chosen["price"], currency), currency


class DhlCarrier:
    name: str

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        api_key: str,
        api_secret: str,
        account: str,
        name: str = "dhl",
        limits: HttpLimits | None = None,
        label_format: str = "pdf",
        services: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.http = CarrierHttp(name, session, base_url, limits)
        redact.register_basic_auth(api_key, api_secret)
        basic = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {basic}", "x-version": X_VERSION}
        self._account = account
        self._format = label_format.lower()
        self._services = frozenset(services)

    def _refused(self, answer: Answer, what: str) -> CarrierError:
        number, text = problem(answer)
        if answer.status in (401, 403):
            return CarrierError(f"{self.name}: {what} not authorised: check the API key")
        return CarrierRefused(f"{self.name}: {what} refused: {number}: {text}", number)

    async def rates(
        self, ship_from: Address, ship_to: Address, parcels: Sequence[Parcel]
    ) -> list[Rate]:
        body = {
            "customerDetails": {
                "shipperDetails": _details(ship_from),
                "receiverDetails": _details(ship_to),
            },
            "accounts": [{"typeCode": "shipper", "number": self._account}],
            "plannedShippingDateAndTime": _planned(),
            "unitOfMeasurement": "metric",
            "isCustomsDeclarable": ship_from.country != ship_to.country,
            "packages": _packages(parcels),
        }
        answer = await self.http.request(
            "POST", "/rates", safe=True, headers=self._headers, json=body
        )
        if answer.status != 200:
            raise self._refused(answer, "rating")
        rates = []
        for product in answer.json().get("products") or []:
            code = str(product.get("productCode", ""))
            price = _price(product.get("totalPrice") or [])
            if price is None or (self._services and code not in self._services):
                continue
            days = (product.get("deliveryCapabilities") or {}).get("totalTransitDays")
            rates.append(
                Rate(
                    self.name,
                    code,
                    price[0],
                    price[1],
                    int(days) if days is not None else None,
                    rate_id(self.name, code, ship_from, ship_to, parcels),
                )
            )
        return rates

    async def ship(
        self,
        rate: Rate,
        ship_from: Address,
        ship_to: Address,
        parcels: Sequence[Parcel],
        reference: str,
    ) -> Label:
        body = {
            "plannedShippingDateAndTime": _planned(),
            "pickup": {"isRequested": False},
            "productCode": rate.service,
            "accounts": [{"typeCode": "shipper", "number": self._account}],
            "customerDetails": {
                "shipperDetails": {
                    "postalAddress": _postal(ship_from),
                    "contactInformation": {
                        "companyName": ship_from.name or "Shipper",
                        "fullName": ship_from.name or "Shipper",
                        "phone": "",
                    },
                },
                "receiverDetails": {
                    "postalAddress": _postal(ship_to),
                    "contactInformation": {
                        "companyName": ship_to.name or "Recipient",
                        "fullName": ship_to.name or "Recipient",
                        "phone": "",
                    },
                },
            },
            "content": {
                "packages": _packages(parcels),
                "isCustomsDeclarable": ship_from.country != ship_to.country,
                "description": reference,
                "incoterm": "DAP",
                "unitOfMeasurement": "metric",
            },
            "customerReferences": [{"value": reference, "typeCode": "CU"}],
            "outputImageProperties": {
                "encodingFormat": self._format,
                "printerDPI": 300,
                "imageOptions": [{"typeCode": "label", "isRequested": True}],
            },
        }
        answer = await self.http.request(
            "POST",
            "/shipments",
            safe=False,
            headers={**self._headers, "Message-Reference": uuid.uuid4().hex},
            json=body,
        )
        if answer.status != 201:
            raise self._refused(answer, "shipment")
        result = answer.json()
        documents = [d for d in result.get("documents") or [] if d.get("typeCode") == "label"]
        if not documents or not result.get("shipmentTrackingNumber"):
            raise CarrierUnavailable(f"{self.name}: shipment answer without a label")
        price = _price(result.get("shipmentCharges") or []) or (rate.amount_minor, rate.currency)
        return Label(
            carrier=self.name,
            service=rate.service,
            tracking_number=str(result["shipmentTrackingNumber"]),
            format="ZPL" if str(documents[0].get("imageFormat", "")).upper() == "ZPL" else "PDF",
            data=base64.b64decode(documents[0].get("content", "")),
            cost_minor=price[0],
            currency=price[1],
        )

    async def pickup(self, ship_from: Address, day: date, parcels: int) -> str:
        body = {
            "plannedPickupDateAndTime": _planned(day),
            "accounts": [{"typeCode": "shipper", "number": self._account}],
            "customerDetails": {
                "shipperDetails": {
                    "postalAddress": _postal(ship_from),
                    "contactInformation": {
                        "companyName": ship_from.name or "Shipper",
                        "fullName": ship_from.name or "Shipper",
                        "phone": "",
                    },
                }
            },
            "shipmentDetails": [
                {
                    "productCode": "N",
                    "isCustomsDeclarable": False,
                    "unitOfMeasurement": "metric",
                    "packages": [{"weight": 1.0} for _ in range(max(1, parcels))],
                }
            ],
        }
        answer = await self.http.request(
            "POST", "/pickups", safe=False, headers=self._headers, json=body
        )
        if answer.status != 201:
            raise self._refused(answer, "pickup")
        numbers = answer.json().get("dispatchConfirmationNumbers") or []
        if not numbers:
            raise CarrierUnavailable(f"{self.name}: pickup answer without a confirmation")
        return str(numbers[0])

    async def track(self, tracking_numbers: Sequence[str]) -> list[TrackingStatus]:
        found: dict[str, TrackingStatus] = {}
        numbers = list(dict.fromkeys(tracking_numbers))
        for start in range(0, len(numbers), TRACK_BATCH):
            batch = numbers[start : start + TRACK_BATCH]
            answer = await self.http.request(
                "GET",
                "/tracking",
                safe=True,
                headers=self._headers,
                params=[("shipmentTrackingNumber", n) for n in batch]
                + [("trackingView", "all-checkpoints"), ("levelOfDetail", "all")],
            )
            if answer.status == 404:  # "No data found" for every number of the batch
                continue
            if answer.status != 200:
                raise self._refused(answer, "tracking")
            for shipment in answer.json().get("shipments") or []:
                number = str(shipment.get("shipmentTrackingNumber", ""))
                events = shipment.get("events") or []
                if not events:
                    continue
                latest = max(reversed(events), key=_dhl_ms)  # oldest first: last of a tie
                fine = statuses.dhl(str(latest.get("typeCode", "")))
                found[number] = TrackingStatus(
                    number,
                    statuses.fold(fine),
                    _dhl_ms(latest),
                    f"{fine} {latest.get('typeCode', '')}: {latest.get('description', '')}",
                )
        return [found.get(n) or TrackingStatus(n, UNKNOWN, 0, "not found") for n in numbers]


def _dhl_ms(event: dict[str, Any]) -> int:
    """``date`` + ``time`` + ``GMTOffset`` (``+01:00``) → epoch ms; 0 if unreadable."""
    text = f"{event.get('date', '')}T{event.get('time', '')}{event.get('GMTOffset') or '+00:00'}"
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return 0
