"""The three fake carriers started together, with the ``carriers:`` configuration that points
at them (for the shipping service's tests and the demo)::

    async with FakeCarrierFleet() as fleet:
        config = parse_carriers_config(fleet.config(service_levels={...}))
        fleet.dhl.down(30)        # an outage; fleet.ups.progress(number, "D/011") delivers
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from connectors.testing.carriers.base import FakeCarrier
from connectors.testing.carriers.chronopost import FakeChronopost
from connectors.testing.carriers.dhl import FakeDhl
from connectors.testing.carriers.ups import FakeUps

DELIVERED = {"ups": "D/011", "dhl": "OK", "chronopost": "D"}  # each fake's delivered code
EXCEPTION = {"ups": "X/013", "dhl": "RD", "chronopost": "XX"}  # … and a delivery exception
IN_TRANSIT = {"ups": "I/005", "dhl": "AF", "chronopost": "TS"}


class FakeCarrierFleet:
    def __init__(self, *, per_s: float = 50.0, burst: float = 50.0) -> None:
        self.ups = FakeUps(per_s=per_s, burst=burst)
        self.dhl = FakeDhl(per_s=per_s, burst=burst)
        self.chronopost = FakeChronopost(per_s=per_s, burst=burst)

    @property
    def by_name(self) -> dict[str, FakeCarrier]:
        return {"ups": self.ups, "dhl": self.dhl, "chronopost": self.chronopost}

    async def __aenter__(self) -> Self:
        for fake in self.by_name.values():
            await fake.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for fake in self.by_name.values():
            await fake.close()

    def progress(self, carrier: str, number: str, status: str) -> None:
        """Moves a parcel on: ``status`` is ``in_transit``, ``delivered`` or ``exception``."""
        code = {"in_transit": IN_TRANSIT, "delivered": DELIVERED, "exception": EXCEPTION}[status]
        self.by_name[carrier].progress(number, code[carrier])

    def config(self, **extra: Any) -> dict[str, Any]:
        """A raw ``carriers:`` mapping for :func:`parse_carriers_config` (``extra`` adds keys:
        parcels, ship_from, service_levels, quote_timeout_s …). A fake made ``slow`` past 3 s
        times out; ``down`` is the quick way to an outage."""
        limits = {"timeout_s": 3.0, "max_attempts": 2}
        return {
            "accounts": [
                {
                    "name": "ups",
                    "kind": "ups",
                    "base_url": self.ups.url,
                    "limits": limits,
                    "credentials": {
                        "client_id": self.ups.client_id,
                        "client_secret": self.ups.client_secret,
                        "account": self.ups.account,
                    },
                },
                {
                    "name": "dhl",
                    "kind": "dhl",
                    "base_url": self.dhl.url,
                    "limits": limits,
                    "credentials": {
                        "api_key": self.dhl.api_key,
                        "api_secret": self.dhl.api_secret,
                        "account": self.dhl.account,
                    },
                },
                {
                    "name": "chronopost",
                    "kind": "chronopost",
                    "base_url": self.chronopost.url,
                    "limits": limits,
                    "credentials": {
                        "account": self.chronopost.account,
                        "password": self.chronopost.password,
                    },
                },
            ],
            "quote_timeout_s": 5.0,
            "currency": "EUR",
            **extra,
        }
