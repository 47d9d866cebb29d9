"""The pure ledger: stock rules, per-SKU state, channel availability and configuration.

No Faust and no I/O here; the agent in ``streams/app*`` decodes, calls :func:`apply`,
stores the returned state and routes what it emitted.
"""

from streams.ledger.availability import (
    DEFAULT_CHANNEL,
    channel_quantities,
    channel_quantity,
    location_available,
)
from streams.ledger.config import (
    DEFAULT_CONFIG,
    ChannelConfig,
    ChannelRule,
    ConfigError,
    LedgerConfig,
    LocationConfig,
    load_config,
    parse_config,
)
from streams.ledger.expiry import expiry_events
from streams.ledger.outcome import Emitted, InvalidEvent
from streams.ledger.rules import apply
from streams.ledger.state import Backorder, Hold, LocationStock, SkuState, StateFormatError

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_CONFIG",
    "Backorder",
    "ChannelConfig",
    "ChannelRule",
    "ConfigError",
    "Emitted",
    "Hold",
    "InvalidEvent",
    "LedgerConfig",
    "LocationConfig",
    "LocationStock",
    "SkuState",
    "StateFormatError",
    "apply",
    "channel_quantities",
    "channel_quantity",
    "expiry_events",
    "load_config",
    "location_available",
    "parse_config",
]
