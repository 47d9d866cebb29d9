"""The lifecycle of a proposal and the purchase order it becomes, as pure functions.

Every function takes a Proposal record (a dict shaped like ``schemas/Proposal.avsc``) and
returns the *next version* of it, never changing its argument: version + 1, ``by``,
``note`` and ``updated_at`` set. The service publishes that version and only then keeps it
(``streams.purchasing.service``). A move the status does not allow raises
:class:`TransitionError` naming the status and what is allowed.

Statuses::

    proposed --approve--> approved --sent--> sent --receipts--> partially_received --> received
       |  \\                  \\--failed--> send_failed --approve--> approved ...
       |   \\--reject--> rejected          \\--reject / cancel_rest--> rejected / cancelled
       \\--a newer plan--> superseded      sent / partially_received --cancel_rest--> cancelled

A line's open quantity is ``qty - received_qty - cancelled_qty`` (never below 0); a
purchase order is received when no line is open.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from schemas.loader import current_schemas

Proposal = dict[str, Any]


def _defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema's defaults of a Proposal and of a ProposalLine."""
    fields = current_schemas()["stockflow.v1.Proposal"].raw["fields"]
    record = {f["name"]: f["default"] for f in fields if "default" in f}
    lines = next(f for f in fields if f["name"] == "lines")["type"]["items"]["fields"]
    return record, {f["name"]: f["default"] for f in lines if "default" in f}


_RECORD_DEFAULTS, _LINE_DEFAULTS = _defaults()

PROPOSED = "proposed"
APPROVED = "approved"
SENT = "sent"
SEND_FAILED = "send_failed"
PARTIALLY_RECEIVED = "partially_received"
RECEIVED = "received"
CANCELLED = "cancelled"
REJECTED = "rejected"
SUPERSEDED = "superseded"

EDITABLE = frozenset({PROPOSED})
APPROVABLE = frozenset({PROPOSED, SEND_FAILED})
REJECTABLE = frozenset({PROPOSED, SEND_FAILED})
CANCELLABLE = frozenset({SENT, PARTIALLY_RECEIVED, SEND_FAILED})
# A purchase order the supplier has (or may have: approved = being sent): receipts count.
ORDERED = frozenset({APPROVED, SENT, PARTIALLY_RECEIVED, RECEIVED, CANCELLED})
OPEN_ORDERS = frozenset({SENT, PARTIALLY_RECEIVED})  # goods still expected; may be late


class TransitionError(ValueError):
    """A change the proposal's status does not allow; the message names both."""


def open_qty(line: Mapping[str, Any]) -> int:
    return max(0, int(line["qty"]) - int(line["received_qty"]) - int(line["cancelled_qty"]))


def total_of(lines: Iterable[Mapping[str, Any]]) -> int:
    return sum(int(line["qty"]) * int(line["unit_cost"]) for line in lines)


def next_version(proposal: Mapping[str, Any], *, by: str, at: int, note: str | None) -> Proposal:
    """A deep copy of ``proposal`` as its next version (status unchanged)."""
    out: Proposal = copy.deepcopy(dict(proposal))
    out["version"] = int(proposal["version"]) + 1
    out["by"] = by
    out["note"] = note
    out["updated_at"] = at
    return out


def _require(proposal: Mapping[str, Any], allowed: frozenset[str], action: str) -> None:
    status = proposal["status"]
    if status not in allowed:
        raise TransitionError(
            f"{proposal['proposal_id']} is {status}: {action} needs status "
            f"{' or '.join(sorted(allowed))}"
        )


def new_proposal(planned: Mapping[str, Any], *, proposal_id: str, at: int) -> Proposal:
    """Version 1 of a planned proposal under ``proposal_id``, its figures kept, the fields
    it lacks at the schema's defaults (as a reader of the topic sees it), its total
    recomputed, receipts and cancellations zeroed."""
    out: Proposal = {**copy.deepcopy(_RECORD_DEFAULTS), **copy.deepcopy(dict(planned))}
    out["lines"] = [{**_LINE_DEFAULTS, **line} for line in out["lines"]]
    out["proposal_id"] = proposal_id
    out["version"] = 1
    out["status"] = PROPOSED
    out.setdefault("by", "planner")
    out["created_at"] = at
    out["updated_at"] = at
    for line in out["lines"]:
        line.setdefault("proposed_qty", line["qty"])
        line["received_qty"] = 0
        line["cancelled_qty"] = 0
    out["total"] = total_of(out["lines"])
    return out


def unique_id(wanted: str, taken: Mapping[str, Any] | set[str]) -> str:
    """``wanted``, or ``wanted-2``, ``wanted-3``... the first one not ``taken``: a purchase
    order number is never reused, even when a planner numbers a new plan like an old one."""
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted}-{n}" in taken:
        n += 1
    return f"{wanted}-{n}"


def supersede(proposal: Mapping[str, Any], *, by: str, at: int, by_id: str) -> Proposal:
    _require(proposal, EDITABLE, "supersede")
    out = next_version(proposal, by=by, at=at, note=f"superseded by {by_id}")
    out["status"] = SUPERSEDED
    return out


def check_qty(line: Mapping[str, Any], qty: int) -> None:
    """ValueError unless ``qty`` units can be ordered on this line: 0 (line dropped), or a
    multiple of the pack size and at least the minimum order quantity."""
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise ValueError(f"{line['sku']}: quantity {qty!r} is not a whole number of units")
    if qty < 0:
        raise ValueError(f"{line['sku']}: quantity {qty} is negative; use 0 to drop the line")
    if qty == 0:
        return
    pack, moq = max(1, int(line["pack_size"])), int(line["moq"])
    if qty % pack:
        below, above = qty - qty % pack, qty - qty % pack + pack
        hint = f"{below} or {above}" if below else f"{above}"
        raise ValueError(
            f"{line['sku']}: {qty} units is not a multiple of the pack size {pack}; order {hint}"
        )
    if qty < moq:
        raise ValueError(
            f"{line['sku']}: {qty} units is below the supplier's minimum order quantity {moq}"
        )


def edit_line(proposal: Mapping[str, Any], sku: str, qty: int, *, by: str, at: int) -> Proposal:
    """The proposal with ``sku``'s line at ``qty`` units (``proposed_qty`` kept, total
    recomputed); ValueError for a quantity the pack size or MOQ refuses or an unknown SKU."""
    _require(proposal, EDITABLE, "editing a line")
    lines = proposal["lines"]
    index = next((i for i, line in enumerate(lines) if line["sku"] == sku), None)
    if index is None:
        skus = ", ".join(line["sku"] for line in lines)
        raise ValueError(f"{proposal['proposal_id']} has no line for {sku!r}; lines: {skus}")
    check_qty(lines[index], qty)
    before = int(lines[index]["qty"])
    out = next_version(proposal, by=by, at=at, note=f"{sku}: {before} -> {qty}")
    out["lines"][index]["qty"] = qty
    out["total"] = total_of(out["lines"])
    return out


def approve(proposal: Mapping[str, Any], *, by: str, at: int) -> Proposal:
    _require(proposal, APPROVABLE, "approval")
    if not any(int(line["qty"]) > 0 for line in proposal["lines"]):
        raise ValueError(f"{proposal['proposal_id']}: every line is 0; reject it instead")
    retry = proposal["status"] == SEND_FAILED
    out = next_version(proposal, by=by, at=at, note="retry after a failed send" if retry else None)
    out["status"] = APPROVED
    return out


def sent(proposal: Mapping[str, Any], *, via: str, ref: str, by: str, at: int) -> Proposal:
    _require(proposal, frozenset({APPROVED}), "recording a send")
    out = next_version(proposal, by=by, at=at, note=None)
    out["status"] = SENT
    out["send_via"] = via
    out["send_ref"] = ref
    return out


def send_failed(proposal: Mapping[str, Any], *, reason: str, by: str, at: int) -> Proposal:
    _require(proposal, frozenset({APPROVED}), "recording a failed send")
    out = next_version(proposal, by=by, at=at, note=reason)
    out["status"] = SEND_FAILED
    return out


def reject(proposal: Mapping[str, Any], *, by: str, at: int, note: str | None) -> Proposal:
    _require(proposal, REJECTABLE, "rejection")
    out = next_version(proposal, by=by, at=at, note=note)
    out["status"] = REJECTED
    return out


def cancel_rest(
    proposal: Mapping[str, Any], *, by: str, at: int
) -> tuple[Proposal, dict[str, int]]:
    """The proposal with every line's open quantity cancelled (status cancelled) and the
    units cancelled per SKU: what lowers ``incoming``. A purchase order whose send failed
    never raised incoming: nothing to lower."""
    _require(proposal, CANCELLABLE, "cancelling the rest")
    ordered = proposal["status"] != SEND_FAILED
    out = next_version(proposal, by=by, at=at, note=None)
    cancelled: dict[str, int] = {}
    for line in out["lines"]:
        rest = open_qty(line)
        if rest:
            line["cancelled_qty"] = int(line["cancelled_qty"]) + rest
            if ordered:
                cancelled[line["sku"]] = rest
    out["status"] = CANCELLED
    described = ", ".join(f"{sku} {n}" for sku, n in cancelled.items()) or "nothing open"
    out["note"] = f"rest cancelled: {described}"
    return out, cancelled


def receive(
    proposal: Mapping[str, Any], sku: str, units: int, *, ref: str, at: int
) -> Proposal | None:
    """The proposal after ``units`` of ``sku`` arrived against it (receipt ``ref``), status
    partially_received or received (a cancelled one stays cancelled); None when the
    purchase order was never ordered (a proposal) or ``units`` is not positive. An
    over-receipt and a SKU not on the order are recorded in the note. None too when
    ``ref`` is the receipt the last version recorded (the same receipt read again after a
    restart that came before its offset was committed)."""
    if proposal["status"] not in ORDERED or units <= 0 or last_receipt_is(proposal, ref):
        return None
    out = next_version(proposal, by="receipts", at=at, note=None)
    line = next((line for line in out["lines"] if line["sku"] == sku), None)
    if line is None:
        out["note"] = f"receipt {ref}: {units} units of {sku}, which is not on this order"
        return out
    expected = open_qty(line)
    line["received_qty"] = int(line["received_qty"]) + units
    notes = [f"receipt {ref}: {sku} +{units}"]
    if units > expected:
        notes.append(f"over-receipt: {units - expected} units of {sku} more than open")
    out["note"] = "; ".join(notes)
    if out["status"] != CANCELLED:
        done = all(open_qty(x) == 0 for x in out["lines"])
        out["status"] = RECEIVED if done else PARTIALLY_RECEIVED
    return out


def last_receipt_is(proposal: Mapping[str, Any], ref: str) -> bool:
    """True when the proposal's current version is the one receipt ``ref`` made."""
    return proposal["by"] == "receipts" and (proposal["note"] or "").startswith(f"receipt {ref}:")


def open_units(proposal: Mapping[str, Any]) -> dict[str, int]:
    """Open quantity per SKU (lines with any open)."""
    return {line["sku"]: open_qty(line) for line in proposal["lines"] if open_qty(line)}


def days_late(proposal: Mapping[str, Any], today: date) -> int:
    """Days an open purchase order is past its expected day (0: not late)."""
    expected = proposal.get("expected_on")
    if proposal["status"] not in OPEN_ORDERS or expected is None or not open_units(proposal):
        return 0
    return max(0, today.toordinal() - date.fromordinal(EPOCH_ORDINAL + int(expected)).toordinal())


EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_number(day: date) -> int:
    """Avro's ``date``: days since 1970-01-01."""
    return day.toordinal() - EPOCH_ORDINAL


def later(current: Mapping[str, Any] | None, incoming: Mapping[str, Any]) -> bool:
    """True when ``incoming`` is a newer version than ``current`` (the highest wins)."""
    return current is None or int(incoming["version"]) > int(current["version"])
