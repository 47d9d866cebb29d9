"""Waves to and from their Avro records (``stockflow.v1.Wave`` on fulfilment.waves.v1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.fulfilment.model import Wave, WaveLine, WaveOrder, WaveStatus

__all__ = ["wave_from_record", "wave_record"]

_STATUSES = frozenset(s.value for s in WaveStatus)


def wave_record(wave: Wave) -> dict[str, Any]:
    return {
        "wave_id": wave.wave_id,
        "version": wave.version,
        "location": wave.location,
        "status": wave.status.value,
        "kind": wave.kind,
        "priority": wave.priority,
        "carrier": wave.carrier,
        "cutoff": wave.cutoff,
        "zone": wave.zone,
        "orders": [
            {
                "order_id": o.order_id,
                "channel": o.channel,
                "express": o.express,
                "carrier": o.carrier,
                "country": o.country,
                "postal_code": o.postal_code,
                "lines": [
                    {
                        "line_id": ln.line_id,
                        "sku": ln.sku,
                        "qty": ln.qty,
                        "bin": ln.bin,
                        "lot": ln.lot,
                        "picked_qty": ln.picked_qty,
                    }
                    for ln in o.lines
                ],
            }
            for o in wave.orders
        ],
        "picks": list(wave.picks),
        "created_at": wave.created_at_ms,
        "updated_at": wave.updated_at_ms,
    }


def wave_from_record(record: Mapping[str, Any]) -> Wave:
    status = str(record.get("status"))
    return Wave(
        wave_id=record["wave_id"],
        location=record["location"],
        status=WaveStatus(status)
        if status in WaveStatus.__members__.values()
        else WaveStatus.PLANNED,
        orders=tuple(
            WaveOrder(
                order_id=o["order_id"],
                channel=o["channel"],
                lines=tuple(
                    WaveLine(
                        line_id=ln["line_id"],
                        sku=ln["sku"],
                        qty=int(ln["qty"]),
                        bin=ln.get("bin"),
                        lot=ln.get("lot"),
                        picked_qty=ln.get("picked_qty"),
                    )
                    for ln in o["lines"]
                ),
                express=bool(o.get("express")),
                carrier=o.get("carrier"),
                country=o.get("country"),
                postal_code=o.get("postal_code"),
            )
            for o in record["orders"]
        ),
        created_at_ms=int(record["created_at"]),
        updated_at_ms=int(record["updated_at"]),
        version=int(record["version"]),
        carrier=record.get("carrier"),
        cutoff=record.get("cutoff"),
        zone=record.get("zone"),
        kind=record.get("kind") or "multi",
        priority=int(record.get("priority") or 0),
        picks=tuple(record.get("picks") or ()),
    )
