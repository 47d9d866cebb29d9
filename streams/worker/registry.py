"""Schema registry calls kept off the worker's event loop.

The registry client is synchronous (urllib) with a 10 s timeout. Called from a coroutine, a
registry that hangs would stop the whole worker for that long: no group heartbeats (the
broker drops the worker and the group rebalances, again and again), no web answers. So what
the codec lacks is fetched in a thread before it is used on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from schemas.codec import Codec


async def resolve_off_loop(codec: Codec, values: Sequence[bytes | None] = ()) -> None:
    """Make ``codec`` able to encode anything and to decode ``values`` without a registry
    call; CodecError ``registry_unavailable`` while the registry does not answer."""
    if codec.needs_registry(values):
        await asyncio.to_thread(codec.resolve, values)
