"""``sftp://user@host[:port]/path[?key_file=...]``: the one parser of the SFTP folders the
project writes to (EDIFACT purchase orders) and reads from (ERP/WMS feeds).

A URL never carries a password (it would end up in configuration files and logs): the
password is ``STOCKFLOW_SFTP_PASSWORD``, or a key file is named with ``?key_file=``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class SftpUrl:
    user: str
    host: str
    port: int
    path: str  # without a trailing slash; "/" for the root
    key_file: str  # from ?key_file=, else ""

    def __str__(self) -> str:  # never a password: the URL may not carry one
        return f"sftp://{self.user}@{self.host}:{self.port}{self.path}"

    @classmethod
    def parse(cls, url: str, what: str = "SFTP folder") -> SftpUrl:
        """ValueError naming ``what`` (and never the URL's password) when ``url`` is not
        ``sftp://user@host[:port]/path`` or carries a password or an unknown option."""
        parts = urlsplit(url)
        if parts.password is not None:
            raise ValueError(
                f"an sftp:// {what} must not carry a password: put it in "
                "STOCKFLOW_SFTP_PASSWORD (or STOCKFLOW_SFTP_PASSWORD_FILE) or use a key file "
                "(?key_file=)"
            )
        try:
            port = parts.port or 22
        except ValueError:
            raise ValueError(f"sftp://{parts.hostname}: the port is not a number") from None
        if parts.scheme != "sftp" or not parts.hostname or not parts.username:
            raise ValueError(f"an {what} is sftp://user@host[:port]/path")
        key_file = ""
        for pair in parts.query.split("&") if parts.query else ():
            key, _, value = pair.partition("=")
            if key != "key_file":
                raise ValueError(f"sftp:// {what}: unknown option {key!r} (only key_file=)")
            key_file = unquote(value)
        path = (parts.path or "/").rstrip("/") or "/"
        return cls(unquote(parts.username), parts.hostname, port, path, key_file)
