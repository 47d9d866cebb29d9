"""Login with Amazon: the seller's refresh token exchanged for an access token.

``POST <token_url>`` (form ``grant_type=refresh_token&refresh_token&client_id&client_secret``)
answers ``{access_token, token_type: bearer, expires_in: 3600}``. The token is kept until
``early_s`` before it expires and shared by every request of the channel (one refresh at a
time); a request Amazon answers 403 ``Unauthorized`` (expired, revoked) drops it, and the
next request gets a new one. No token or credential is ever logged: each is registered
with :mod:`connectors.framework.redact`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from connectors.framework import redact
from connectors.framework.types import RejectedError, ThrottledError, UnavailableError


class LwaTokens:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_url: str,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        early_s: float = 60.0,
        timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        redact.register(client_secret, refresh_token)
        self._session = session
        self._url = token_url
        self._form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._early = early_s
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token: str | None = None
        self._until = 0.0
        self._lock = asyncio.Lock()
        self.issued = 0  # tokens obtained (a figure for tests and logs)

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._until:
                await self._refresh()
            assert self._token is not None
            return self._token

    def invalidate(self, token: str) -> None:
        """Amazon refused ``token``: the next request gets a new one."""
        if self._token == token:
            self._token = None

    async def _refresh(self) -> None:
        try:
            async with self._session.post(
                self._url, data=self._form, timeout=self._timeout
            ) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise UnavailableError(
                f"Login with Amazon unreachable: {redact.describe(exc)}"
            ) from None
        if status == 429:
            raise ThrottledError("Login with Amazon 429", None)
        if status >= 500:
            raise UnavailableError(f"Login with Amazon {status}")
        if status >= 400 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            raise RejectedError(
                f"Login with Amazon {status} {error or 'without access_token'}: check the "
                "channel's client_id, client_secret and refresh_token (a refresh token is "
                "revoked when the seller removes the authorisation)"
            )
        token = str(body["access_token"])
        redact.register(token)
        lifetime = float(body.get("expires_in") or 3600)
        self._token = token
        self._until = self._clock() + max(0.0, lifetime - min(self._early, lifetime / 2))
        self.issued += 1
