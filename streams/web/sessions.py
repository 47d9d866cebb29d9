"""Signed, expiring session cookies, their CSRF tokens, and the login rate limit.

A session is a cookie ``<payload>.<signature>``: the payload (base64url JSON) names the
login (empty before logging in), the user's fingerprint (a new password ends the session),
a random CSRF token and the expiry; the signature is HMAC-SHA256 under the page's key. The
cookie is HttpOnly and SameSite=Strict; every form posts the session's CSRF token back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from streams.kernel.settings import Settings

COOKIE = "stockflow_session"


@dataclass(frozen=True)
class Session:
    login: str  # "" before logging in
    fingerprint: str
    csrf: str
    expires: int  # unix seconds


def session_key(settings: Settings) -> bytes:
    """STOCKFLOW_WEB_SECRET, or a key generated once into the state folder (mode 0600)."""
    if settings.web_secret.reveal():
        return hashlib.sha256(settings.web_secret.reveal().encode()).digest()
    path = settings.state_dir / "web" / "session.key"
    return _key_file(path)


def _key_file(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as out:
        out.write(key.hex())
    return key


class Signer:
    def __init__(self, key: bytes, lifetime_s: int) -> None:
        self._key = key
        self.lifetime_s = lifetime_s

    def new(self, login: str, fingerprint: str, *, now: float) -> Session:
        return Session(login, fingerprint, secrets.token_urlsafe(24), int(now) + self.lifetime_s)

    def dump(self, session: Session) -> str:
        body = json.dumps(
            {"u": session.login, "f": session.fingerprint, "c": session.csrf, "e": session.expires},
            separators=(",", ":"),
        ).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}"

    def load(self, cookie: str | None, *, now: float) -> Session | None:
        """The session of a cookie, or None if it is missing, forged or expired."""
        if not cookie or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            session = Session(str(raw["u"]), str(raw["f"]), str(raw["c"]), int(raw["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > now else None

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class LoginLimiter:
    """Failed logins counted per login and per address over a sliding window; past the
    limit, further attempts are refused (even with the right password) until it passes."""

    def __init__(
        self, *, per_login: int = 5, per_address: int = 20, window_s: float = 900.0
    ) -> None:
        self.per_login, self.per_address, self.window_s = per_login, per_address, window_s
        self.max_keys = 10_000
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        seen = self._failures.setdefault(key, deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        return seen

    def retry_after(self, login: str, address: str, *, now: float) -> int:
        """Seconds until an attempt is allowed again; 0 when it is allowed now."""
        wait = 0.0
        for key, limit in (
            (f"login:{login}", self.per_login),
            (f"addr:{address}", self.per_address),
        ):
            seen = self._recent(key, now)
            if len(seen) >= limit:
                wait = max(wait, seen[len(seen) - limit] + self.window_s - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, login: str, address: str, *, now: float) -> None:
        if len(self._failures) >= self.max_keys:  # many logins tried: forget the expired ones
            for key in list(self._failures):
                if not self._recent(key, now):
                    del self._failures[key]
        for key in (f"login:{login}", f"addr:{address}"):
            self._recent(key, now).append(now)

    def succeeded(self, login: str) -> None:
        self._failures.pop(f"login:{login}", None)
