"""Carrier tracking codes → the normalised statuses (carrier-contracts §5).

Each carrier's code is first grouped into the fine status of §5 (LABEL_CREATED … UNKNOWN),
then folded into the four an order cares for: ``delivered``, ``exception`` (returned and
cancelled included: the parcel will not arrive), ``in_transit`` (picked up to out for
delivery, attempted, awaiting collection) and ``unknown`` (label created only, unmapped code).
"""

from __future__ import annotations

from typing import Final

from connectors.carriers.model import DELIVERED, EXCEPTION, IN_TRANSIT, UNKNOWN

FOLD: Final[dict[str, str]] = {
    "LABEL_CREATED": UNKNOWN,
    "PICKED_UP": IN_TRANSIT,
    "IN_TRANSIT": IN_TRANSIT,
    "OUT_FOR_DELIVERY": IN_TRANSIT,
    "AVAILABLE_FOR_PICKUP": IN_TRANSIT,
    "DELIVERY_ATTEMPTED": IN_TRANSIT,
    "DELIVERED": DELIVERED,
    "EXCEPTION": EXCEPTION,
    "RETURNED": EXCEPTION,
    "CANCELLED": EXCEPTION,
    "UNKNOWN": UNKNOWN,
}

_UPS_TYPES: Final = {
    "M": "LABEL_CREATED",
    "P": "PICKED_UP",
    "I": "IN_TRANSIT",
    "D": "DELIVERED",
    "X": "EXCEPTION",
    "MV": "CANCELLED",
}
_UPS_CODES: Final = {
    "003": "LABEL_CREATED",
    "038": "PICKED_UP",
    "005": "IN_TRANSIT",
    "010": "IN_TRANSIT",
    "006": "OUT_FOR_DELIVERY",
    "021": "OUT_FOR_DELIVERY",
    "072": "OUT_FOR_DELIVERY",
    "017": "AVAILABLE_FOR_PICKUP",
    "040": "AVAILABLE_FOR_PICKUP",
    "011": "DELIVERED",
    "022": "DELIVERY_ATTEMPTED",
    "023": "DELIVERY_ATTEMPTED",
    "024": "DELIVERY_ATTEMPTED",
    "060": "DELIVERY_ATTEMPTED",
    "013": "EXCEPTION",
    "034": "RETURNED",
    "007": "CANCELLED",
}
_DHL: Final = {
    **{
        "PU": "PICKED_UP",
        "SA": "PICKED_UP",
        "WC": "OUT_FOR_DELIVERY",
        "CC": "AVAILABLE_FOR_PICKUP",
        "OK": "DELIVERED",
        "PD": "DELIVERED",
        "RT": "RETURNED",
    },
    **dict.fromkeys(("AF", "AR", "DF", "PL", "TR", "RR", "IC", "CR", "BR"), "IN_TRANSIT"),
    **dict.fromkeys(("NH", "CA", "MD", "BA", "CM", "ND"), "DELIVERY_ATTEMPTED"),
    **dict.fromkeys(("OH", "HP", "CD", "UD", "MS", "MC", "DD", "SS", "DS", "RD"), "EXCEPTION"),
}
_CHRONOPOST: Final = {
    "DC": "LABEL_CREATED",
    "DB": "PICKED_UP",
    "DY": "PICKED_UP",
    "SC": "IN_TRANSIT",
    "TS": "IN_TRANSIT",
    "SD": "IN_TRANSIT",
    "TA": "OUT_FOR_DELIVERY",
    "D": "DELIVERED",
}


def ups(status_type: str, status_code: str = "") -> str:
    """UPS ``status.type`` + ``statusCode``: the 3-digit code refines type ``I`` and names
    returns; an unknown pair is ``UNKNOWN``."""
    by_code = _UPS_CODES.get(status_code)
    if by_code is not None and (status_type in ("I", "") or by_code in ("RETURNED", "CANCELLED")):
        return by_code
    return _UPS_TYPES.get(status_type, by_code or "UNKNOWN")


def dhl(type_code: str) -> str:
    return _DHL.get(type_code, "UNKNOWN")


def chronopost(code: str, high_priority: bool = False) -> str:
    """Chronopost publishes no full list: an unmapped high-priority event is an exception."""
    fine = _CHRONOPOST.get(code)
    if fine is not None:
        return fine
    return "EXCEPTION" if high_priority else "UNKNOWN"


def fold(fine: str) -> str:
    return FOLD.get(fine, UNKNOWN)
