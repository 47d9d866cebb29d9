"""The Fnac Darty XML dialect (``http://www.fnac.com/schemas/mp-dialog.xsd``): requests built
with ElementTree, answers parsed with defusedxml (no entity expansion, no external DTD).

Every request is ``<service xmlns=… partner_id=… shop_id=… token=…>`` with the service's
children; every answer is ``<service_response status="OK|WARNING|ERROR|FATAL">`` whose
``<error severity=… code=…>`` children explain a refusal. Tags are returned without their
namespace so the readers below stay short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

NS = "http://www.fnac.com/schemas/mp-dialog.xsd"
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'


class DialogError(ValueError):
    """An answer that is not the XML the API speaks (truncated, HTML error page, entities)."""


@dataclass(frozen=True, slots=True)
class ApiError:
    code: str
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} ({self.severity}): {self.message}"


def element(service: str, attributes: Mapping[str, str] | None = None) -> Element:
    """The root of a request to ``service``, in the API's namespace."""
    return Element(service, {"xmlns": NS, **dict(attributes or {})})


def child(parent: Element, tag: str, text: object = None, **attributes: str) -> Element:
    node = SubElement(parent, tag, attributes)
    if text is not None:
        node.text = str(text)
    return node


def serialise(root: Element) -> bytes:
    return XML_DECLARATION + tostring(root, encoding="utf-8")


def parse(raw: bytes) -> Element:
    """The answer's root element with namespaces stripped from every tag."""
    try:
        root = fromstring(raw)
    except (ParseError, DefusedXmlException) as exc:
        raise DialogError(f"unreadable XML answer ({type(exc).__name__}: {exc})") from None
    for node in root.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]
    return root


def text(node: Element | None, tag: str, default: str = "") -> str:
    """The stripped text of ``node``'s first ``tag`` child (``default`` when absent)."""
    if node is None:
        return default
    found = node.find(tag)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def errors(node: Element) -> list[ApiError]:
    """The ``<error>`` children of ``node`` (not of its descendants)."""
    return [
        ApiError(
            code=str(e.get("code") or ""),
            severity=str(e.get("severity") or "ERROR"),
            message=(e.text or "").strip(),
        )
        for e in node.findall("error")
    ]
