"""The ordering page's users: a YAML file of logins, roles, password hashes and TOTP secrets.

The file (``STOCKFLOW_WEB_USERS``, default ``<state dir>/web/users.yaml``, mode 0600)::

    users:
      - login: alice
        role: approver
        password: scrypt$16384$8$1$<salt>$<hash>
        totp_secret: <base32>        # approvers and admins only

Passwords are hashed with scrypt (hashlib) and a random 16-byte salt; the file never holds a
password. Approvers and admins log in with a second factor, a TOTP code (RFC 6238, 30 s,
6 digits) from the secret written here and shown once as a provisioning URI. The file is read
again when it changes, so ``stockflow web user add`` takes effect without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import yaml

from streams.kernel.settings import Settings

ROLES = ("viewer", "buyer", "approver", "admin")
# what each role may do: read every page, edit quantities, approve/send/reject/cancel, all
PERMISSIONS: Mapping[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "buyer": frozenset({"read", "edit"}),
    "approver": frozenset({"read", "edit", "approve"}),
    "admin": frozenset({"read", "edit", "approve", "admin"}),
}
SECOND_FACTOR_ROLES = frozenset({"approver", "admin"})
LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD_LENGTH = 10
ISSUER = "stockflow"

# scrypt cost: 16 MiB and ~50 ms per check on this class of machine
_N, _R, _P = 2**14, 8, 1


class UsersError(ValueError):
    """The users file or a user's entry cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class User:
    login: str
    role: str
    password: str  # the scrypt hash, never the password
    totp_secret: str | None = None

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]

    @property
    def needs_code(self) -> bool:
        return self.role in SECOND_FACTOR_ROLES

    @property
    def fingerprint(self) -> str:
        """Changes when the password or the second factor changes: ends older sessions."""
        seed = f"{self.password}|{self.totp_secret or ''}".encode()
        return hashlib.sha256(seed).hexdigest()[:16]

    def __repr__(self) -> str:  # the hash and the TOTP secret stay out of logs
        return f"User(login={self.login!r}, role={self.role!r})"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**26,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def users_path(settings: Settings) -> Path:
    if settings.web_users:
        return Path(settings.web_users)
    return settings.state_dir / "web" / "users.yaml"


def _parse(raw: Any, path: Path) -> dict[str, User]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not isinstance(raw.get("users", []), list):
        raise UsersError(f"{path}: expected a mapping with a list under 'users'")
    found: dict[str, User] = {}
    for i, entry in enumerate(raw.get("users") or []):
        where = f"{path}: users[{i}]"
        if not isinstance(entry, dict):
            raise UsersError(f"{where}: expected a mapping with login, role, password")
        login, role, password = entry.get("login"), entry.get("role"), entry.get("password")
        if not isinstance(login, str) or not LOGIN_PATTERN.match(login):
            raise UsersError(f"{where}.login: lower-case letters, digits, '.', '_', '-'")
        if role not in ROLES:
            raise UsersError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(password, str) or not password.startswith("scrypt$"):
            raise UsersError(f"{where}.password: not a scrypt hash (use stockflow web user add)")
        totp = entry.get("totp_secret")
        if role in SECOND_FACTOR_ROLES and not totp:
            raise UsersError(f"{where}.totp_secret: a {role} needs a TOTP secret")
        if login in found:
            raise UsersError(f"{where}.login: {login!r} appears twice")
        found[login] = User(login, str(role), password, str(totp) if totp else None)
    return found


class UserStore:
    """The users of the file at ``path``, read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._users = None, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._users = _parse(yaml.safe_load(self.path.read_text()), self.path)
            self._stamp = stamp

    def get(self, login: str) -> User | None:
        self._refresh()
        return self._users.get(login)

    def all(self) -> list[User]:
        self._refresh()
        return sorted(self._users.values(), key=lambda u: u.login)

    def _write(self, users: list[User]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        for user in users:
            row: dict[str, str] = {"login": user.login, "role": user.role}
            row["password"] = user.password
            if user.totp_secret:
                row["totp_secret"] = user.totp_secret
            rows.append(row)
        text = yaml.safe_dump({"users": rows}, sort_keys=False)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, self.path)

    def add(self, login: str, role: str, password: str, *, replace: bool = False) -> User:
        """Adds (or with ``replace`` replaces) a user; a new TOTP secret for approvers/admins."""
        if not LOGIN_PATTERN.match(login):
            raise UsersError(
                f"login {login!r}: 1-64 lower-case letters, digits, '.', '_', '-' "
                "starting with a letter or digit"
            )
        if role not in ROLES:
            raise UsersError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UsersError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
        users = {u.login: u for u in self.all()}
        if login in users and not replace:
            raise UsersError(f"user {login!r} exists; --replace sets a new password and role")
        totp = pyotp.random_base32() if role in SECOND_FACTOR_ROLES else None
        user = User(login, role, hash_password(password), totp)
        users[login] = user
        self._write(sorted(users.values(), key=lambda u: u.login))
        return user

    def remove(self, login: str) -> bool:
        users = {u.login: u for u in self.all()}
        if users.pop(login, None) is None:
            return False
        self._write(sorted(users.values(), key=lambda u: u.login))
        return True


def provisioning_uri(user: User) -> str:
    """The otpauth:// URI an authenticator app reads (as a QR code or pasted)."""
    if user.totp_secret is None:
        raise UsersError(f"{user.login} has no second factor")
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.login, issuer_name=ISSUER)


class CodeChecker:
    """TOTP codes, each accepted once: a code seen for a user is refused if shown again."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def check(self, user: User, code: str, *, at: float) -> bool:
        if user.totp_secret is None:
            return False
        code = code.strip().replace(" ", "")
        if not code.isdigit() or len(code) != 6:
            return False
        totp = pyotp.TOTP(user.totp_secret)
        for drift in (0, -1, 1):  # one step either side for clock skew
            when = at + drift * totp.interval
            step = totp.timecode(_dt(when))
            if hmac.compare_digest(totp.at(when), code):
                if step <= self._last.get(user.login, -1):
                    return False  # replayed
                self._last[user.login] = step
                return True
        return False


def _dt(at: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC)
