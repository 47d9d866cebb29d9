"""`stockflow token create|list|revoke`: the HTTP APIs' bearer tokens in ``stockflow.tokens.v1``.

``create`` prints the token once (or writes it to ``--output``, mode 0600) and stores only
its SHA-256; a name already in use is refused unless ``--replace`` (the old token stops
working). ``revoke`` keeps the record, marked revoked: every process refuses the token
within ``STOCKFLOW_TOKENS_STALE_SECONDS``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import KafkaException

from streams.kernel.access.store import publish, read_all
from streams.kernel.access.tokens import TokenError, TokenRecord, new_token
from streams.kernel.settings import Settings


def create(
    settings: Settings,
    name: str,
    scopes: list[str],
    sources: list[str] | None = None,
    *,
    rate: float | None = None,
    burst: int | None = None,
    replace: bool = False,
    locations: list[str] | None = None,
) -> tuple[str, TokenRecord]:
    """A new token stored hashed; TokenError when the name is taken (without ``replace``).
    ``locations``: the only locations it may act for (the ``replenish`` scope); none: all."""
    token, record = new_token(
        name, scopes, sources or (), rate=rate, burst=burst, locations=locations or ()
    )
    existing = read_all(settings).get(name)
    if existing is not None and not existing.revoked and not replace:
        raise TokenError(
            f"a token named {name!r} exists; revoke it first, or pass --replace to replace it "
            "(the old token stops working)"
        )
    publish(settings, [record])
    return token, record


def revoke(settings: Settings, name: str) -> TokenRecord:
    existing = read_all(settings).get(name)
    if existing is None:
        raise TokenError(f"no token named {name!r}; see `stockflow token list`")
    if existing.revoked:
        return existing
    revoked = existing.revoke()
    publish(settings, [revoked])
    return revoked


def write_private(path: Path, token: str) -> None:
    """The token alone in ``path``, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    path.chmod(0o600)


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def run_token(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.action == "create":
            if not args.name:
                raise TokenError("token create NAME --scopes ...: NAME is missing")
            token, record = create(
                settings,
                args.name,
                _split(args.scopes),
                _split(args.sources),
                rate=args.rate,
                burst=args.burst,
                replace=args.replace,
                locations=_split(getattr(args, "locations", None)),
            )
            what = f"scopes {', '.join(record.scopes)}; sources {', '.join(record.sources)}"
            if record.locations:
                what += f"; locations {', '.join(record.locations)}"
            if args.output:
                write_private(Path(args.output), token)
                print(f"token {record.name!r} ({what}) written to {args.output}", file=sys.stderr)
            else:
                print(token)
                print(
                    f"token {record.name!r} ({what}): shown this once, only its hash is stored",
                    file=sys.stderr,
                )
            return 0
        if args.action == "revoke":
            if not args.name:
                raise TokenError("token revoke NAME: NAME is missing")
            record = revoke(settings, args.name)
            print(f"token {record.name!r} revoked at {_when(record.revoked_at)}", file=sys.stderr)
            return 0
        table = [("name", "scopes", "sources", "created", "revoked")] + [
            (
                r.name,
                ",".join(r.scopes),
                ",".join(r.sources),
                _when(r.created_at),
                _when(r.revoked_at),
            )
            for r in read_all(settings).records()
        ]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for row in table:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        return 0
    except TokenError as exc:
        print(f"stockflow token {args.action}: {exc}", file=sys.stderr)
        return 2
    except (KafkaException, TimeoutError) as exc:
        print(
            f"stockflow token {args.action}: Kafka at {settings.bootstrap}: {exc}", file=sys.stderr
        )
        return 3


def _split(raw: list[str] | None) -> list[str]:
    """``a,b c`` -> [a, b, c]: comma- or space-separated, as the shell gave them."""
    return [part.strip() for arg in raw or () for part in arg.split(",") if part.strip()]
