"""Results of a bench run: rows with numbers, printed as a table or as JSON."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Row:
    measure: str
    value: float | None  # None: not measured (the note says why)
    unit: str
    target: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.extra.get("verdict", "")


def machine() -> dict[str, Any]:
    cpus = 0
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("processor"):
                    cpus += 1
                elif line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpus": cpus, "cpu": model, "python": platform.python_version()}


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def render(rows: list[Row], mode: str) -> str:
    head = ("measure", "value", "unit", "target", "ok", "note")
    body = [(r.measure, _fmt(r.value), r.unit, r.target, r.verdict, r.note) for r in rows]
    widths = [max(len(str(line[i])) for line in [head, *body]) for i in range(len(head))]
    m = machine()
    out = [f"stockflow bench ({mode}) on {m['cpus']} CPUs, {m['cpu']}, Python {m['python']}"]
    for n, line in enumerate([head, *body]):
        cells = [
            str(c).rjust(w) if i == 1 else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def to_json(rows: list[Row], mode: str) -> str:
    return json.dumps({"mode": mode, "machine": machine(), "rows": [asdict(r) for r in rows]})
