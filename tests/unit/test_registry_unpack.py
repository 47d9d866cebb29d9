"""The registry's archive is unpacked only inside its folder, on every Python 3.11."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from deploy.local.registry import extract_safely, member_outside


def _archive(path: Path, *members: tuple[str, str | None]) -> Path:
    """A .tar.gz of files (name, None) and symbolic links (name, target)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, link in members:
            info = tarfile.TarInfo(name)
            if link is None:
                info.size = 2
                tar.addfile(info, io.BytesIO(b"ok"))
            else:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
    return path


def test_members_that_would_land_outside_the_folder_are_named(tmp_path: Path) -> None:
    """Given archives with a path climbing out and a link out of the folder, and one that
    stays inside, when checked against the folder (what Pythons without tar filters rely
    on), then the climbing and linking members are named and the good archive unpacks."""
    dest = tmp_path / "dist"
    climbing = _archive(tmp_path / "a.tar.gz", ("lib/ok.jar", None), ("../evil", None))
    linking = _archive(tmp_path / "b.tar.gz", ("bin/java", "../../../usr/bin/java"))
    good = _archive(tmp_path / "c.tar.gz", ("lib/ok.jar", None), ("run.jar", "lib/ok.jar"))
    with tarfile.open(climbing) as tar:
        assert member_outside(tar, dest) == "../evil"
    with tarfile.open(linking) as tar:
        assert member_outside(tar, dest) == "bin/java"
    with tarfile.open(good) as tar:
        assert member_outside(tar, dest) is None
        extract_safely(tar, dest)
    assert (dest / "lib" / "ok.jar").read_bytes() == b"ok"
