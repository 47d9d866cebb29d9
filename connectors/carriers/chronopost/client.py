"""Chronopost (SOAP 1.1, CXF): quotes (``calculateProducts``), labels
(``shippingMultiParcelV5``), pickups (``creerEnlevementNational``) and tracking
(``trackSkybillV2``). Contract: ``connectors/carriers/chronopost/README.md``.

Business errors come back as HTTP 200 with ``errorCode`` ≠ 0 (``codeErreur`` on the pickup
operation); a malformed request gets a ``soap:Fault`` with HTTP 500. Quotes carry no currency
(EUR) and no transit time: the promised days come from the product table below (or config).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

import aiohttp

from connectors.carriers import statuses
from connectors.carriers.base import CarrierError, CarrierRefused, CarrierUnavailable
from connectors.carriers.chronopost import soap
from connectors.carriers.http import CarrierHttp, HttpLimits
from connectors.carriers.model import UNKNOWN, Address, Label, Parcel, Rate, TrackingStatus
from connectors.carriers.units import cm, kg, minor_units, rate_id
from connectors.framework import redact

NS_SHIPPING: Final = "http://cxf.shipping.soap.chronopost.fr/"
NS_TRACKING: Final = "http://cxf.tracking.soap.chronopost.fr/"
NS_QUICKCOST: Final = "http://cxf.quickcost.soap.chronopost.fr/"
SHIPPING: Final = "/shipping-cxf/ShippingServiceWS"
TRACKING: Final = "/tracking-cxf/TrackingServiceWS"
QUICKCOST: Final = "/quickcost-cxf/QuickcostServiceWS"
# promised working days per product (Chronopost's product names say it: 13 = by 13:00 next
# day); calculateProducts answers codes unpadded ("1"), shipping wants them padded ("01")
DAYS: Final = {
    "01": 1,
    "02": 1,
    "16": 1,
    "58": 1,
    "2M": 1,
    "4I": 0,
    "86": 2,
    "17": 2,
    "44": 3,
    "49": 4,
}
BAD_LOGIN: Final = "3"


def padded(code: str) -> str:
    return code.zfill(2) if code.isdigit() else code


class ChronopostCarrier:
    name: str

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        account: str,
        password: str,
        name: str = "chronopost",
        limits: HttpLimits | None = None,
        sub_account: str = "",
        label_mode: str = "PDF",
        services: Sequence[str] = (),
        days: Mapping[str, int] | None = None,
    ) -> None:
        self.name = name
        self.http = CarrierHttp(name, session, base_url, limits)
        redact.register(password)
        self._account = account
        self._password = password
        self._sub_account = sub_account
        self._mode = label_mode.upper()
        self._services = frozenset(padded(s) for s in services)
        self._days = {**DAYS, **(days or {})}

    async def _call(
        self, path: str, namespace: str, operation: str, fields: soap.Fields, *, safe: bool
    ) -> dict[str, Any]:
        answer = await self.http.request(
            "POST",
            path,
            safe=safe,
            headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": '""'},
            data=soap.envelope(namespace, operation, fields),
        )
        try:
            content = soap.parse(answer.body)
        except soap.SoapFaultError as exc:
            raise CarrierRefused(f"{self.name}: {operation} fault {exc}", exc.code) from None
        except ValueError as exc:
            raise CarrierUnavailable(
                f"{self.name}: {operation} answered HTTP {answer.status}, {exc}"
            ) from None
        result = soap.first(content, "return")
        if result is None:
            raise CarrierUnavailable(f"{self.name}: {operation} answer without a return")
        return soap.to_dict(result)

    def _check(
        self,
        result: Mapping[str, Any],
        operation: str,
        code_key: str = "errorCode",
        message_key: str = "errorMessage",
    ) -> None:
        code = str(result.get(code_key) or "0")
        if code == "0":
            return
        message = str(result.get(message_key) or result.get("libelleErreur") or "")
        if code == BAD_LOGIN:
            raise CarrierError(
                f"{self.name}: {operation}: errorCode 3 {message}: check the "
                "account number and password"
            )
        raise CarrierRefused(f"{self.name}: {operation} refused: errorCode {code} {message}", code)

    async def rates(
        self, ship_from: Address, ship_to: Address, parcels: Sequence[Parcel]
    ) -> list[Rate]:
        weight = sum(p.weight_g for p in parcels)
        biggest = max(parcels, key=lambda p: p.length_mm * p.width_mm * p.height_mm)
        result = await self._call(
            QUICKCOST,
            NS_QUICKCOST,
            "calculateProducts",
            {
                "accountNumber": self._account,
                "password": self._password,
                "depCountryCode": ship_from.country,
                "depZipCode": ship_from.postal_code,
                "arrCountryCode": ship_to.country,
                "arrZipCode": ship_to.postal_code,
                "arrCity": ship_to.city,
                "type": "M",
                "weight": kg(weight),
                "height": cm(biggest.height_mm),
                "length": cm(biggest.length_mm),
                "width": cm(biggest.width_mm),
                "shippingDate": datetime.now(tz=UTC).strftime("%d/%m/%Y"),
            },
            safe=True,
        )
        self._check(result, "calculateProducts")
        products = result.get("productList") or []
        rates = []
        for product in products if isinstance(products, list) else [products]:
            code = padded(str(product.get("productCode", "")))
            if not code or (self._services and code not in self._services):
                continue
            rates.append(
                Rate(
                    self.name,
                    code,
                    minor_units(product.get("amount", "0"), "EUR"),
                    "EUR",
                    self._days.get(code),
                    rate_id(self.name, code, ship_from, ship_to, parcels),
                )
            )
        return rates

    def _party(self, prefix: str, address: Address) -> dict[str, Any]:
        lines = list(address.lines) or [""]
        fields = {
            f"{prefix}Name": address.name or "-",
            f"{prefix}Adress1": lines[0],  # sic: Chronopost's spelling
            f"{prefix}Adress2": lines[1] if len(lines) > 1 else "",
            f"{prefix}ZipCode": address.postal_code,
            f"{prefix}City": address.city,
            f"{prefix}Country": address.country,
            f"{prefix}Civility": "M",
            f"{prefix}ContactName": address.name or "-",
            f"{prefix}PreAlert": 0,
        }
        return fields

    async def ship(
        self,
        rate: Rate,
        ship_from: Address,
        ship_to: Address,
        parcels: Sequence[Parcel],
        reference: str,
    ) -> Label:
        # one PDF per parcel cannot be joined into one file: several parcels travel as ZPL
        mode = self._mode if len(parcels) == 1 or self._mode != "PDF" else "Z2D"
        now = datetime.now(tz=UTC)
        result = await self._call(
            SHIPPING,
            NS_SHIPPING,
            "shippingMultiParcelV5",
            {
                "headerValue": {
                    "accountNumber": self._account,
                    "idEmit": "CHRFR",
                    "subAccount": self._sub_account,
                },
                "shipperValue": self._party("shipper", ship_from),
                "customerValue": self._party("customer", ship_from),
                "recipientValue": self._party("recipient", ship_to),
                "refValue": {"shipperRef": reference, "recipientRef": ""},
                "skybillValue": [
                    {
                        "productCode": padded(rate.service),
                        "service": "0",
                        "objectType": "MAR",
                        "evtCode": "DC",
                        "shipDate": now.strftime("%Y-%m-%dT%H:%M:%S"),
                        "shipHour": now.hour,
                        "weight": kg(p.weight_g),
                        "weightUnit": "KGM",
                        "height": cm(p.height_mm),
                        "length": cm(p.length_mm),
                        "width": cm(p.width_mm),
                    }
                    for p in parcels
                ],
                "skybillParamsValue": {"mode": mode},
                "password": self._password,
                "numberOfParcel": len(parcels),
                "version": "2.0",
                "multiParcel": "Y" if len(parcels) > 1 else "N",
            },
            safe=False,
        )
        self._check(result, "shippingMultiParcelV5")
        values = result.get("resultMultiParcelValue") or []
        values = values if isinstance(values, list) else [values]
        if not values:
            raise CarrierUnavailable(f"{self.name}: shipment answer without a skybill")
        data = b"".join(base64.b64decode(v.get("pdfEtiquette", "")) for v in values)
        return Label(
            carrier=self.name,
            service=rate.service,
            tracking_number=str(values[0].get("skybillNumber", "")),
            format="PDF" if mode == "PDF" else "ZPL",
            data=data,
            cost_minor=rate.amount_minor,  # billed at creation at the quoted price
            currency=rate.currency,
        )

    async def pickup(self, ship_from: Address, day: date, parcels: int) -> str:
        lines = list(ship_from.lines) or [""]
        result = await self._call(
            SHIPPING,
            NS_SHIPPING,
            "creerEnlevementNational",
            {
                "headerValue": {
                    "accountNumber": self._account,
                    "idEmit": "CHRFR",
                    "subAccount": self._sub_account,
                },
                "password": self._password,
                "datePassage": f"{day.isoformat()}T09:00:00",
                "datePassageFermeture": f"{day.isoformat()}T18:00:00",
                "donneurDOrdre": {
                    "nom": ship_from.name or "-",
                    "adresse1": lines[0],
                    "codePostal": ship_from.postal_code,
                    "ville": ship_from.city,
                    "codePays": ship_from.country,
                },
                "adresseEnlevement": {
                    "nom": ship_from.name or "-",
                    "adresse1": lines[0],
                    "codePostal": ship_from.postal_code,
                    "ville": ship_from.city,
                    "codePays": ship_from.country,
                },
                "contenu": f"{parcels} colis",  # a string in the WSDL
                "locale": "fr_FR",
            },
            safe=False,
        )
        self._check(result, "creerEnlevementNational", "codeErreur", "libelleErreur")
        number = (result.get("infoEnlevement") or {}).get("numeroUniqueESD")
        if not number:
            raise CarrierUnavailable(f"{self.name}: pickup answer without an ESD number")
        return str(number)

    async def track(self, tracking_numbers: Sequence[str]) -> list[TrackingStatus]:
        """``trackSkybillV2`` takes one skybill and no credentials."""
        out = []
        for number in dict.fromkeys(tracking_numbers):
            result = await self._call(
                TRACKING,
                NS_TRACKING,
                "trackSkybillV2",
                {"language": "en_GB", "skybillNumber": number},
                safe=True,
            )
            if str(result.get("errorCode") or "0") != "0":
                out.append(TrackingStatus(number, UNKNOWN, 0, "not found"))
                continue
            events = (result.get("listEventInfoComp") or {}).get("events") or []
            events = events if isinstance(events, list) else [events]
            if not events:
                out.append(TrackingStatus(number, UNKNOWN, 0, "not found"))
                continue
            latest = max(reversed(events), key=_chrono_ms)  # oldest first: last of a tie
            fine = statuses.chronopost(
                str(latest.get("code", "")), str(latest.get("highPriority", "")).lower() == "true"
            )
            out.append(
                TrackingStatus(
                    number,
                    statuses.fold(fine),
                    _chrono_ms(latest),
                    f"{fine} {latest.get('code', '')}: {latest.get('eventLabel', '')}",
                )
            )
        return out


def _chrono_ms(event: Mapping[str, Any]) -> int:
    try:
        return int(datetime.fromisoformat(str(event.get("eventDate", ""))).timestamp() * 1000)
    except ValueError:
        return 0
