"""Where feed files arrive: a folder on disk, or a folder on an SFTP server (asyncssh).

Both list the files waiting in the folder (not its ``done/`` and ``failed/`` subfolders,
not hidden files, not ``*.part`` files still being uploaded, not reports), read one, and
move it to ``done/`` or ``failed/`` with its report beside it (``<name>.report.csv``). A
name already taken there gets the content hash's first characters added.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncssh

from streams.kernel.settings import Settings
from streams.kernel.sftp_url import SftpUrl

DONE, FAILED = "done", "failed"
REPORT_SUFFIX = ".report.csv"


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    size: int
    mtime: float


def waiting(name: str) -> bool:
    """A name the watcher takes: not hidden, not a partial upload, not a report."""
    return not (name.startswith(".") or name.endswith((".part", REPORT_SUFFIX)))


def _final(name: str, taken: set[str], digest: str) -> str:
    if name not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{digest[:12]}.{suffix}" if dot and stem else f"{name}.{digest[:12]}"


class Source(Protocol):
    where: str

    async def entries(self) -> list[Entry]: ...

    async def stat(self, name: str) -> Entry | None: ...

    async def read(self, name: str) -> bytes: ...

    async def finish(self, name: str, folder: str, digest: str, report: bytes | None) -> str: ...

    async def close(self) -> None: ...


class FolderSource:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

    async def entries(self) -> list[Entry]:
        found = []
        for path in self.root.iterdir():
            if waiting(path.name):
                entry = await self.stat(path.name)
                if entry is not None:
                    found.append(entry)
        return sorted(found, key=lambda e: (e.mtime, e.name))

    async def stat(self, name: str) -> Entry | None:
        try:
            info = (self.root / name).stat()
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return Entry(name, info.st_size, info.st_mtime)

    async def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    async def finish(self, name: str, folder: str, digest: str, report: bytes | None) -> str:
        target = self.root / folder
        target.mkdir(exist_ok=True)
        final = _final(name, {p.name for p in target.iterdir()}, digest)
        if report is not None:
            (target / f"{final}{REPORT_SUFFIX}").write_bytes(report)
        os.replace(self.root / name, target / final)
        return str(target / final)

    async def close(self) -> None:
        return None


class SftpFolder(SftpUrl):
    """A feed folder on an SFTP server; the host key is checked against
    ``STOCKFLOW_SFTP_KNOWN_HOSTS`` when it is opened."""

    __slots__ = ()

    @classmethod
    def parse(cls, url: str, what: str = "feed folder") -> SftpFolder:
        parsed = SftpUrl.parse(url, what)
        return cls(parsed.user, parsed.host, parsed.port, parsed.path, parsed.key_file)


class SftpSource:
    """The folder of an SFTP server; one connection, opened again after it drops."""

    def __init__(self, folder: SftpFolder, settings: Settings) -> None:
        self.folder = folder
        self.where = str(folder)
        self._settings = settings
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None

    def _path(self, *parts: str) -> str:
        return "/".join((self.folder.path.rstrip("/"), *parts)) or "/"

    async def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        key_file = self.folder.key_file or self._settings.sftp_key_file
        options: dict[str, Any] = {
            "username": self.folder.user,
            "password": self._settings.sftp_password.reveal() or None,
            "client_keys": [key_file] if key_file else None,  # never the agent's keys
            "agent_path": None,
            "connect_timeout": 15,
        }
        if self._settings.sftp_known_hosts:
            options["known_hosts"] = self._settings.sftp_known_hosts
        self._conn = await asyncssh.connect(self.folder.host, self.folder.port, **options)
        self._sftp = await self._conn.start_sftp_client()
        return self._sftp

    async def _call(self, what: str, *args: Any) -> Any:
        """One SFTP operation; a dropped connection is closed so the next call reconnects."""
        try:
            sftp = await self._client()
            return await getattr(self, what)(sftp, *args)
        except (OSError, asyncssh.Error) as exc:
            if not isinstance(exc, asyncssh.SFTPError):
                await self.close()
            raise OSError(f"{self.where}: {exc}") from None

    async def entries(self) -> list[Entry]:
        return list(await self._call("_entries"))

    async def _entries(self, sftp: asyncssh.SFTPClient) -> list[Entry]:
        found = []
        for item in await sftp.readdir(self._path()):
            name = str(item.filename)
            mode = item.attrs.permissions
            if waiting(name) and mode is not None and stat.S_ISREG(mode):
                found.append(Entry(name, item.attrs.size or 0, float(item.attrs.mtime or 0)))
        return sorted(found, key=lambda e: (e.mtime, e.name))

    async def stat(self, name: str) -> Entry | None:
        return await self._call("_stat", name)

    async def _stat(self, sftp: asyncssh.SFTPClient, name: str) -> Entry | None:
        try:
            attrs = await sftp.stat(self._path(name))
        except asyncssh.SFTPNoSuchFile:
            return None
        return Entry(name, attrs.size or 0, float(attrs.mtime or 0))

    async def read(self, name: str) -> bytes:
        return await self._call("_read", name)

    async def _read(self, sftp: asyncssh.SFTPClient, name: str) -> bytes:
        async with sftp.open(self._path(name), "rb") as remote:
            data = await remote.read()
        return data if isinstance(data, bytes) else data.encode()

    async def finish(self, name: str, folder: str, digest: str, report: bytes | None) -> str:
        return await self._call("_finish", name, folder, digest, report)

    async def _finish(
        self, sftp: asyncssh.SFTPClient, name: str, folder: str, digest: str, report: bytes | None
    ) -> str:
        target = self._path(folder)
        await sftp.makedirs(target, exist_ok=True)
        final = _final(name, set(await sftp.listdir(target)), digest)
        if report is not None:
            async with sftp.open(f"{target}/{final}{REPORT_SUFFIX}", "wb") as remote:
                await remote.write(report)
        await sftp.rename(self._path(name), f"{target}/{final}")
        return f"{target}/{final}"

    async def close(self) -> None:
        sftp, conn, self._sftp, self._conn = self._sftp, self._conn, None, None
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)
