"""SOAP 1.1 envelopes for Chronopost's CXF services, built and read as lxml trees (never
string concatenation: every value is a text node, escaped by the library).

Chronopost's schemas are ``elementFormDefault="unqualified"``: only the operation wrapper is in
the service's namespace, its children are not. Answers are read by local name, so a prefix
change on their side does not matter. Parsing refuses entities and network access.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from lxml import etree

SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
CONTENT_TYPE: Final = "text/xml; charset=utf-8"
_PARSER: Final = etree.XMLParser(
    resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True
)

Fields = Mapping[str, Any]  # value: str | int | float | bool | Fields | Sequence[Fields | str]


class SoapFaultError(Exception):
    """The service answered a ``soap:Fault`` (malformed request, server failure)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def append(parent: etree._Element, name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        child = etree.SubElement(parent, name)
        for key, inner in value.items():
            append(child, key, inner)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for item in value:
            append(parent, name, item)
    elif value is not None:
        etree.SubElement(parent, name).text = _text(value)


def envelope(namespace: str, operation: str, fields: Fields) -> bytes:
    """``<soapenv:Envelope><soapenv:Body><ns:operation>…fields…</ns:operation>…``"""
    root = etree.Element(
        etree.QName(SOAP_ENV, "Envelope"), nsmap={"soapenv": SOAP_ENV, "ns": namespace}
    )
    etree.SubElement(root, etree.QName(SOAP_ENV, "Header"))
    body = etree.SubElement(root, etree.QName(SOAP_ENV, "Body"))
    wrapper = etree.SubElement(body, etree.QName(namespace, operation))
    for key, value in fields.items():
        append(wrapper, key, value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def parse(payload: bytes) -> etree._Element:
    """The first element of the SOAP body (the ``…Response`` wrapper or the request's
    operation); raises :class:`SoapFaultError` for a fault and ``ValueError`` for non-SOAP."""
    try:
        root = etree.fromstring(payload, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not XML: {exc}") from None
    body = first(root, "Body")
    if body is None or len(body) == 0:
        raise ValueError("not a SOAP envelope (no Body)")
    content = body[0]
    if etree.QName(content).localname == "Fault":
        raise SoapFaultError(text(content, "faultcode"), text(content, "faultstring"))
    return content


def fault(code: str, message: str) -> bytes:
    root = etree.Element(etree.QName(SOAP_ENV, "Envelope"), nsmap={"soap": SOAP_ENV})
    body = etree.SubElement(root, etree.QName(SOAP_ENV, "Body"))
    element = etree.SubElement(body, etree.QName(SOAP_ENV, "Fault"))
    etree.SubElement(element, "faultcode").text = code
    etree.SubElement(element, "faultstring").text = message
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def first(element: etree._Element, name: str) -> etree._Element | None:
    """The first descendant (or self) named ``name`` in any namespace."""
    found = element.xpath(".//*[local-name()=$n]", n=name)
    return found[0] if isinstance(found, list) and found else None


def every(element: etree._Element, name: str) -> list[etree._Element]:
    """The direct children named ``name`` in any namespace."""
    return [c for c in element if isinstance(c.tag, str) and etree.QName(c).localname == name]


def text(element: etree._Element | None, name: str, default: str = "") -> str:
    """Text of the first descendant named ``name`` (``default`` if absent or empty)."""
    if element is None:
        return default
    found = first(element, name)
    return (found.text or default).strip() if found is not None else default


def to_dict(element: etree._Element) -> dict[str, Any]:
    """Children as a dict by local name (a repeated name becomes a list); leaves as text."""
    out: dict[str, Any] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        value: Any = to_dict(child) if len(child) else (child.text or "").strip()
        if name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out
