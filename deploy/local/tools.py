"""Find, or install, the programs the local stack runs on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from deploy.local.process import StackError, run_checked

TEMPLATES = Path(__file__).resolve().parent / "templates"


def render(template: str, **values: object) -> str:
    """A template from templates/ with ``{name}`` placeholders filled in."""
    text = (TEMPLATES / template).read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java is missing: Kafka and the schema registry need Java 17 or later "
            "(apt-get install openjdk-17-jre-headless)"
        )
    major = java_version(java)
    if major and major < 17:
        raise StackError(f"Java 17 or later is needed, found Java {major} at {java}")
    return java


def require_maven() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven is missing: the stack fetches the Kafka jars from Maven Central with it "
            "(apt-get install maven)"
        )
    return mvn


def java_version(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    try:
        return int(out.splitlines()[0].split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        return 0


def require_java_at_least(major: int, what: str) -> str:
    """A java binary of version ``major`` or later: PATH first, then /usr/lib/jvm."""
    candidates = [shutil.which("java") or ""]
    candidates += [str(p) for p in sorted(Path("/usr/lib/jvm").glob("*/bin/java"), reverse=True)]
    for java in candidates:
        if java and Path(java).exists() and java_version(java) >= major:
            return java
    raise StackError(
        f"{what} needs Java {major} or later and none was found on PATH or in /usr/lib/jvm; "
        f"install a JDK {major}+ (for example Temurin) there"
    )


_apt_updated = False


def ensure_debian_package(binary: str, package: str) -> str:
    """Path of ``binary``; installs Debian's ``package`` first when it is missing."""
    found = shutil.which(binary) or _sbin(binary)
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise StackError(
            f"{binary} is missing; install Debian's {package} package "
            f"(as root: apt-get install {package})"
        )
    global _apt_updated
    env_prefix = ["env", "DEBIAN_FRONTEND=noninteractive"]
    if not _apt_updated:
        say("apt-get update")
        run_checked([*env_prefix, "apt-get", "update", "-qq"], what="apt-get update")
        _apt_updated = True
    say(f"installing Debian package {package}")
    run_checked(
        [*env_prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        what=f"apt-get install {package}",
    )
    found = shutil.which(binary) or _sbin(binary)
    if not found:
        raise StackError(f"{package} was installed but {binary} is still not on PATH")
    return found


def _sbin(binary: str) -> str | None:
    for folder in ("/usr/sbin", "/usr/bin", "/usr/local/bin"):
        candidate = Path(folder) / binary
        if candidate.exists():
            return str(candidate)
    return None
