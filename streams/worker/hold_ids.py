"""Hold ids carry their SKU, so a release can be routed to the SKU's partition."""

from __future__ import annotations

import base64
import binascii
import uuid
from hashlib import blake2b


def hold_id_for(sku: str, idempotency_key: str | None = None) -> str:
    """A hold id that carries its SKU, so DELETE /v1/holds/{id} can find the partition.

    With an ``Idempotency-Key``, the id derives from the key and the SKU: a retried request
    names the same hold (and the same event id, which the ledger applies once), on any
    worker and after any restart. Without one, every call is a new hold.
    """
    encoded = base64.urlsafe_b64encode(sku.encode()).decode().rstrip("=")
    if idempotency_key is None:
        tail = uuid.uuid4().hex
    else:
        tail = blake2b(f"{sku}\x00{idempotency_key}".encode(), digest_size=16).hexdigest()
    return f"h.{encoded}.{tail}"


def sku_of_hold(hold_id: str) -> str | None:
    parts = hold_id.split(".")
    if len(parts) != 3 or parts[0] != "h":
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        sku = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return sku or None
