"""A fake Chronopost (SOAP 1.1 CXF services) faithful to
``connectors/carriers/chronopost/README.md``: operations matched by local name, business
errors as HTTP 200 with ``errorCode`` ≠ 0 (``codeErreur`` on pickups), a malformed request as
a ``soap:Fault`` with HTTP 500, base64 ``pdfEtiquette``, ``XX#########FR`` skybills,
unauthenticated ``trackSkybillV2``, padded product codes on shipping and unpadded ones in
``calculateProducts``. Chronopost documents no rate limit: the fake's throttle is a
``soap:Fault`` with HTTP 503 (an assumption).

Run alone: ``python -m connectors.testing.carriers.chronopost``.
"""

from __future__ import annotations

import asyncio
import base64
import string
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from lxml import etree

from connectors.carriers.chronopost import soap
from connectors.carriers.chronopost.client import NS_QUICKCOST, NS_SHIPPING, NS_TRACKING
from connectors.testing.base import serve_forever
from connectors.testing.carriers.base import (
    FakeCarrier,
    FakeService,
    FakeShipment,
    pdf_label,
    zpl_label,
)

Operation = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _answer(namespace: str, operation: str, result: dict[str, Any]) -> web.Response:
    root = etree.Element(
        etree.QName(soap.SOAP_ENV, "Envelope"), nsmap={"soap": soap.SOAP_ENV, "ns2": namespace}
    )
    body = etree.SubElement(root, etree.QName(soap.SOAP_ENV, "Body"))
    wrapper = etree.SubElement(body, etree.QName(namespace, f"{operation}Response"))
    soap.append(wrapper, "return", result)
    return web.Response(
        body=etree.tostring(root, xml_declaration=True, encoding="utf-8"),
        content_type="text/xml",
        charset="utf-8",
    )


def _fault(status: int, code: str, message: str) -> web.Response:
    return web.Response(
        body=soap.fault(code, message), status=status, content_type="text/xml", charset="utf-8"
    )


class FakeChronopost(FakeCarrier):
    services = (
        FakeService("01", "Chrono 13", 1290, 140, 1),
        FakeService("16", "Chrono 18", 990, 120, 1),
        FakeService("86", "Chrono Relais", 590, 90, 2),
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.account = "19869502"
        self.password = "255562"  # noqa: S105 - Chronopost's public test account
        self._ops: dict[str, tuple[str, Operation]] = {
            "calculateProducts": (NS_QUICKCOST, self._calculate_products),
            "shippingMultiParcelV5": (NS_SHIPPING, self._shipping),
            "creerEnlevementNational": (NS_SHIPPING, self._pickup),
            "trackSkybillV2": (NS_TRACKING, self._track),
        }

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/quickcost-cxf/QuickcostServiceWS", self._dispatch),
            web.post("/shipping-cxf/ShippingServiceWS", self._dispatch),
            web.post("/tracking-cxf/TrackingServiceWS", self._dispatch),
        ]

    def throttled(self, retry_after: float) -> web.Response:
        return _fault(503, "soap:Server", "Service temporarily unavailable")

    def failure(self, status: int, retry_after: float | None) -> web.Response:
        return _fault(status, "soap:Server", "Fault occurred while processing.")

    async def _dispatch(self, request: web.Request) -> web.Response:
        try:
            operation = soap.parse(await request.read())
        except (ValueError, soap.SoapFaultError):
            return _fault(500, "soap:Client", "Unmarshalling Error: not a SOAP request")
        name = etree.QName(operation).localname
        if name not in self._ops:
            return _fault(500, "soap:Client", f"Unexpected wrapper element {name} found.")
        namespace, handler = self._ops[name]
        return _answer(namespace, name, await handler(soap.to_dict(operation)))

    def _login_ok(self, fields: dict[str, Any]) -> bool:
        account = fields.get("accountNumber") or (fields.get("headerValue") or {}).get(
            "accountNumber"
        )
        return account == self.account and fields.get("password") == self.password

    async def _calculate_products(self, fields: dict[str, Any]) -> dict[str, Any]:
        if not self._login_ok(fields):
            return {"errorCode": 3, "errorMessage": "invalid account or password"}
        if fields.get("arrZipCode") in self.invalid_postal_codes:
            return {"errorCode": 6, "errorMessage": "Code postal de destination invalide"}
        weight = int(float(fields.get("weight") or 0) * 1000)
        products = []
        for s in self.services:
            net = self.price(s, weight)
            products.append(
                {
                    "productCode": s.code.lstrip("0") or "0",  # unpadded here
                    "amount": f"{net / 100:.2f}",
                    "amountTVA": f"{net * 0.2 / 100:.2f}",
                    "amountTTC": f"{net * 1.2 / 100:.2f}",
                }
            )
        return {"errorCode": 0, "errorMessage": "", "productList": products}

    async def _shipping(self, fields: dict[str, Any]) -> dict[str, Any]:
        if not self._login_ok(fields):
            return {"errorCode": 3, "errorMessage": "invalid account or password"}
        recipient = fields.get("recipientValue") or {}
        if recipient.get("recipientZipCode") in self.invalid_postal_codes:
            return {"errorCode": 6, "errorMessage": "Code postal du destinataire invalide"}
        skybills = fields.get("skybillValue") or []
        skybills = skybills if isinstance(skybills, list) else [skybills]
        if not skybills or not recipient.get("recipientAdress1"):
            return {"errorCode": 1, "errorMessage": "system error: missing skybillValue"}
        service = self.service(str(skybills[0].get("productCode", "")))
        if service is None:
            return {"errorCode": 33, "errorMessage": "contrat non autorisé pour ce produit"}
        mode = str((fields.get("skybillParamsValue") or {}).get("mode", "PDF"))
        reference = str((fields.get("refValue") or {}).get("shipperRef", ""))
        letters = string.ascii_uppercase
        numbers = [
            f"X{self.rng.choice(letters)}{self.rng.randrange(10**8, 10**9)}FR" for _ in skybills
        ]
        labels = [
            pdf_label("Chronopost", n, reference) if mode == "PDF" else zpl_label(n, reference)
            for n in numbers
        ]
        weight = int(sum(float(s.get("weight") or 0) for s in skybills) * 1000)
        self.store(
            FakeShipment(
                numbers[0],
                service.code,
                reference,
                len(skybills),
                self.price(service, weight),
                self.currency,
                b"".join(labels),
            ),
            "DC",
        )
        return {
            "errorCode": 0,
            "errorMessage": "",
            "reservationNumber": "",
            "resultMultiParcelValue": [
                {
                    "skybillNumber": n,
                    "pdfEtiquette": base64.b64encode(label).decode(),
                    "codeService": "0",
                    "serviceName": service.name,
                    "geoPostNumeroColis": n,
                }
                for n, label in zip(numbers, labels, strict=True)
            ],
        }

    async def _pickup(self, fields: dict[str, Any]) -> dict[str, Any]:
        if not self._login_ok(fields):
            return {"codeErreur": 3, "libelleErreur": "compte ou mot de passe invalide"}
        number = f"ESD{self.rng.randrange(10**8, 10**9)}"
        self.pickups.append({"number": number, "at": fields.get("datePassage")})
        return {
            "codeErreur": 0,
            "libelleErreur": "",
            "infoEnlevement": {
                "numeroUniqueESD": number,
                "idEnlevement": number[3:],
                "datePassage": fields.get("datePassage", ""),
            },
        }

    async def _track(self, fields: dict[str, Any]) -> dict[str, Any]:
        number = str(fields.get("skybillNumber", ""))
        shipment = self.shipments.get(number)
        if shipment is None:
            return {"errorCode": 2, "errorMessage": "skybill not found"}
        return {
            "errorCode": 0,
            "listEventInfoComp": {
                "skybillNumber": number,
                "events": [
                    {
                        "code": code,
                        "eventDate": datetime.fromtimestamp(at, tz=UTC).isoformat(
                            timespec="seconds"
                        ),
                        "eventLabel": _CHRONO_WORDS.get(code, "Incident"),
                        "highPriority": "true"
                        if code not in _CHRONO_WORDS or code == "D"
                        else "false",
                        "officeLabel": "",
                        "zipCode": "",
                    }
                    for code, at in shipment.events  # oldest first
                ],
            },
        }


_CHRONO_WORDS = {
    "DC": "Shipment created",
    "DB": "Handed over",
    "SC": "Sorted at origin",
    "TS": "In transit",
    "TA": "Out for delivery",
    "D": "Delivered",
}


if __name__ == "__main__":
    asyncio.run(serve_forever(FakeChronopost(), "fake Chronopost"))
