"""The purchasing service: the one owner of proposals and purchase orders in a deployment.

State is the last version of every proposal on the compacted ``replenishment.proposals.v1``,
read to its end by :meth:`PurchasingService.start` and then followed (a newer version
written elsewhere wins; the service's own records read back change nothing). Every change
is made under one asyncio lock, in this order:

1. the next version is computed by the pure rules (``streams.purchasing.lifecycle``);
2. it is published (with the StockEvents or Alert it implies, in one batch) and Kafka's
   acknowledgement awaited (idempotent producer, ``acks=all``);
3. only then the in-memory state takes it. A publish that fails changes nothing.

Approving sends the purchase order (``sending.send_purchase_order``, outside the lock, with
retries for retryable failures), then publishes one ``purchase_ordered`` StockEvent per line
with units (incoming rises at the destination) and the ``sent`` version. A crash between the
send and the ``sent`` record leaves the proposal ``approved``: :meth:`start` sends it again
(the supplier sees the same purchase order number; the events' ids are the same, so the
ledger applies them once).

Receipts are followed from ``stock.movements.v1`` (movements of type ``receipt`` whose
``source_ref`` is a purchase order number); a timer raises one ``po_late`` Alert per purchase
order still open after its expected day, with one ``purchase_late`` StockEvent per open
line (no stock effect: the ledger answers with a ``preorder_at_risk`` alert listing the
pre-orders waiting for those units).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Protocol

from schemas.codec import Codec, codec_for
from schemas.events import check as check_event
from schemas.events import stock_event
from schemas.times import now_ms
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_io import GroupReader, Publisher, TopicReader
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    REPLENISHMENT_PROPOSALS,
    STOCK_ALERTS,
    STOCK_EVENTS,
    STOCK_MOVEMENTS,
    TopicSpec,
)
from streams.purchasing import lifecycle
from streams.replenishment.model import ReplenishmentConfig, Supplier

log = logging.getLogger("stockflow.purchasing")

RECEIPTS_GROUP = "stockflow-purchasing"  # the receipts follower's consumer group
SOURCE = "purchasing"  # StockEvent.source of the purchase_ordered / purchase_cancelled events
LATE_KIND = "po_late"


class Planner(Protocol):
    def __call__(
        self,
        settings: Settings,
        config: ReplenishmentConfig,
        *,
        today: date,
        locations: Collection[str] | None = None,
    ) -> Awaitable[list[dict[str, Any]]] | list[dict[str, Any]]: ...


class SendReceiptLike(Protocol):
    @property
    def via(self) -> str: ...
    @property
    def ref(self) -> str: ...


Sender = Callable[[Mapping[str, Any], Supplier, Settings], Awaitable[SendReceiptLike]]


class UnknownProposal(KeyError):  # noqa: N818 - reads as what it is
    """No proposal with that id."""


def _default_planner() -> Planner:
    from streams.purchasing.planning import compute_proposals

    return compute_proposals


def _default_sender() -> Sender:
    from streams.purchasing.sending import send_purchase_order

    return send_purchase_order


def _send_error(exc: BaseException) -> tuple[str, bool] | None:
    """(message, retryable) when ``exc`` is the sender's SendError, else None."""
    from streams.purchasing.sending import SendError

    if isinstance(exc, SendError):
        return str(getattr(exc, "message", exc)), bool(getattr(exc, "retryable", False))
    return None


def _accepts(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def purchase_event(
    kind: str, proposal: Mapping[str, Any], sku: str, qty: int, at: int
) -> dict[str, Any]:
    """The ``purchase_ordered`` / ``purchase_cancelled`` StockEvent of one line, checked."""
    suffix = {"purchase_ordered": "", "purchase_late": "|late"}.get(kind, "|cancel")
    expected = proposal.get("expected_on") if kind == "purchase_ordered" else None
    event = stock_event(
        kind,
        sku,
        f"po|{proposal['proposal_id']}|{sku}{suffix}",
        at,
        qty=qty,
        location=proposal["location"],
        source=SOURCE,
        source_ref=proposal["proposal_id"],
        expected_on=None if expected is None else int(expected),  # pre-orders' promised day
    )
    check_event(event)
    return event


def late_alert(proposal: Mapping[str, Any], days: int, at: int) -> dict[str, Any]:
    """The one ``po_late`` Alert of a purchase order (its id is the same at every raise, so
    a repeat after a restart is the same alert downstream)."""
    open_units = lifecycle.open_units(proposal)
    first = next(iter(open_units))
    expected = date.fromordinal(lifecycle.EPOCH_ORDINAL + int(proposal["expected_on"]))
    return {
        "alert_id": f"{LATE_KIND}|{proposal['proposal_id']}",
        "kind": LATE_KIND,
        "sku": first,
        "location": proposal["location"],
        "channel": None,
        "value": sum(open_units.values()),
        "threshold": days,
        "message": (
            f"purchase order {proposal['proposal_id']} from {proposal['supplier']} to "
            f"{proposal['location']} was expected on {expected.isoformat()} and is {days} "
            f"day(s) late: {sum(open_units.values())} unit(s) still open on "
            f"{len(open_units)} line(s) ({', '.join(sorted(open_units))})"
        ),
        "event_id": proposal["proposal_id"],
        "at": at,
    }


class PurchasingService:
    """Proposals and purchase orders: plan, edit, approve and send, receive, cancel."""

    def __init__(
        self,
        settings: Settings,
        config: ReplenishmentConfig,
        *,
        planner: Planner | None = None,
        sender: Sender | None = None,
        codec: Codec | None = None,
        receipts_group: str = RECEIPTS_GROUP,
        receipts_reset: str = "latest",
        send_attempts: int = 3,
        send_backoff_s: float = 0.5,
        late_every_s: float = 60.0,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.planner = planner if planner is not None else _default_planner()
        self.sender = sender if sender is not None else _default_sender()
        self.codec = codec if codec is not None else codec_for(settings)
        self.receipts_group = receipts_group
        self.receipts_reset = receipts_reset
        self.send_attempts = max(1, send_attempts)
        self.send_backoff_s = send_backoff_s
        self.late_every_s = late_every_s
        self.today = today if today is not None else (lambda: datetime.now(UTC).date())
        self._state: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()
        self._late_alerted: set[str] = set()
        self._receipts_seen: set[str] = set()  # movement ids applied by this process
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher: Publisher | None = None
        self._reader: TopicReader | None = None
        self._receipts: GroupReader | None = None
        self.ready = asyncio.Event()  # state read, followers running
        self.receipts_ready = asyncio.Event()  # the receipts follower has its partitions

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the proposals topic to its end, follow it and the receipts, start the
        lateness timer, then send again what a crash left approved."""
        topics = (REPLENISHMENT_PROPOSALS, STOCK_EVENTS, STOCK_MOVEMENTS, STOCK_ALERTS)
        await asyncio.to_thread(ensure_topics, self.settings, topics)
        self._publisher = Publisher(self.settings, self.codec)
        self._reader = TopicReader(self.settings, REPLENISHMENT_PROPOSALS, self.codec)
        for record in await self._reader.catch_up():
            self._take(record)
        log.info(
            "purchasing: %d proposal(s) read from %s",
            len(self._state),
            REPLENISHMENT_PROPOSALS.name,
        )
        self._receipts = GroupReader(
            self.settings, STOCK_MOVEMENTS, self.codec, self.receipts_group, self.receipts_reset
        )
        self._tasks = [
            asyncio.create_task(self._follow_proposals(), name="purchasing-proposals"),
            asyncio.create_task(self._follow_receipts(), name="purchasing-receipts"),
            asyncio.create_task(self._watch_lateness(), name="purchasing-lateness"),
        ]
        self.ready.set()
        for proposal_id in [p for p, r in self._state.items() if r["status"] == lifecycle.APPROVED]:
            log.info(
                "purchasing: %s was approved but not recorded sent; sending again", proposal_id
            )
            await self._send(proposal_id)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._reader is not None:
            await self._reader.close()
        if self._receipts is not None:
            await self._receipts.close()
        if self._publisher is not None:
            await asyncio.to_thread(self._publisher.close)
        self.ready.clear()
        self.receipts_ready.clear()

    # -- reading --------------------------------------------------------------------------

    def proposals(
        self, status: str | None = None, supplier: str | None = None, location: str | None = None
    ) -> list[dict[str, Any]]:
        """The current version of every proposal matching the filters, newest first (copies:
        changing them changes nothing here)."""
        found = [
            r
            for r in self._state.values()
            if (status is None or r["status"] == status)
            and (supplier is None or r["supplier"] == supplier)
            and (location is None or r["location"] == location)
        ]
        found.sort(key=lambda r: (-int(r["created_at"]), r["proposal_id"]))
        return copy.deepcopy(found)

    def get(self, proposal_id: str) -> dict[str, Any] | None:
        """The current version of a proposal (a copy), None when unknown."""
        return copy.deepcopy(self._state.get(proposal_id))

    async def sku_view(self, sku: str, location: str, *, days: int = 28) -> dict[str, Any]:
        """A SKU at a location for the page: stock position and recent movements (ClickHouse),
        its forecast when forecasting is installed, and the open purchase orders for it."""
        from streams.purchasing.skuview import read_sku_view

        view = await asyncio.to_thread(read_sku_view, self.settings, sku, location, days=days)
        view["purchase_orders"] = [
            {
                "proposal_id": r["proposal_id"],
                "status": r["status"],
                "supplier": r["supplier"],
                "expected_on": r["expected_on"],
                "open": lifecycle.open_units(r).get(sku, 0),
            }
            for r in self.proposals(location=location)
            if r["status"] in lifecycle.OPEN_ORDERS | {lifecycle.PROPOSED, lifecycle.APPROVED}
            and any(line["sku"] == sku for line in r["lines"])
        ]
        return view

    # -- changes --------------------------------------------------------------------------

    async def plan(self, location: str | None = None, by: str = "planner") -> list[dict[str, Any]]:
        """Plan (for one location or all), supersede the still-proposed proposals of the same
        supplier x location, publish the new ones, then approve and send the ``auto`` ones.
        Returns the new proposals as they stand after sending."""
        planned = await self._call_planner(location)
        async with self._lock:
            at = now_ms()
            taken = set(self._state)
            fresh: list[dict[str, Any]] = []
            for p in planned:
                if location is not None and p["location"] != location:
                    continue
                proposal_id = lifecycle.unique_id(str(p["proposal_id"]), taken)
                taken.add(proposal_id)
                new = lifecycle.new_proposal(p, proposal_id=proposal_id, at=at)
                new["by"] = by
                fresh.append(new)
            replaced: list[dict[str, Any]] = []
            for new in fresh:
                for old in self._state.values():
                    if (
                        old["status"] == lifecycle.PROPOSED
                        and (old["supplier"], old["location"]) == (new["supplier"], new["location"])
                        and old["proposal_id"] not in {r["proposal_id"] for r in replaced}
                    ):
                        replaced.append(
                            lifecycle.supersede(old, by=by, at=at, by_id=new["proposal_id"])
                        )
            await self._put([*replaced, *fresh])
        log.info(
            "purchasing: planned %d proposal(s)%s, %d superseded",
            len(fresh),
            f" for {location}" if location else "",
            len(replaced),
        )
        for new in fresh:
            if new.get("auto"):
                try:
                    await self.approve(new["proposal_id"], by="auto")
                except (lifecycle.TransitionError, ValueError) as exc:
                    log.warning("purchasing: auto-send of %s skipped: %s", new["proposal_id"], exc)
        return copy.deepcopy([self._state[new["proposal_id"]] for new in fresh])

    async def _call_planner(self, location: str | None) -> list[dict[str, Any]]:
        """The planner's proposals; a plain function (it reads ClickHouse) runs in a thread,
        so the service keeps answering meanwhile. A planner that takes ``taken_ids`` is
        told every proposal id in use."""
        options: dict[str, Any] = {
            "today": self.today(),
            "locations": None if location is None else [location],
        }
        if _accepts(self.planner, "taken_ids"):
            options["taken_ids"] = set(self._state)
        result: Any = await asyncio.to_thread(self.planner, self.settings, self.config, **options)
        if inspect.isawaitable(result):
            result = await result
        return list(result)

    async def edit_line(self, proposal_id: str, sku: str, qty: int, by: str) -> dict[str, Any]:
        async with self._lock:
            nxt = lifecycle.edit_line(self._need(proposal_id), sku, qty, by=by, at=now_ms())
            await self._put([nxt])
        return copy.deepcopy(nxt)

    async def reject(self, proposal_id: str, by: str, note: str | None = None) -> dict[str, Any]:
        async with self._lock:
            nxt = lifecycle.reject(self._need(proposal_id), by=by, at=now_ms(), note=note)
            await self._put([nxt])
        return copy.deepcopy(nxt)

    async def approve(self, proposal_id: str, by: str) -> dict[str, Any]:
        """Approve (a proposal, or a purchase order whose send failed: a retry) and send it;
        returns the version after sending: ``sent`` or ``send_failed`` with the reason."""
        async with self._lock:
            nxt = lifecycle.approve(self._need(proposal_id), by=by, at=now_ms())
            await self._put([nxt])
        return await self._send(proposal_id)

    async def cancel_rest(self, proposal_id: str, by: str) -> dict[str, Any]:
        """Cancel what is still open on every line: a ``purchase_cancelled`` event per line
        lowers incoming by the units never to come; the purchase order is then cancelled."""
        async with self._lock:
            current = self._need(proposal_id)
            at = now_ms()
            nxt, cancelled = lifecycle.cancel_rest(current, by=by, at=at)
            events = [
                purchase_event("purchase_cancelled", current, sku, qty, at)
                for sku, qty in cancelled.items()
            ]
            await self._put([nxt], events=events)
        return copy.deepcopy(nxt)

    # -- sending --------------------------------------------------------------------------

    async def _send(self, proposal_id: str) -> dict[str, Any]:
        proposal = copy.deepcopy(self._state[proposal_id])  # the sender gets its own copy
        supplier = self.config.suppliers.get(proposal["supplier"])
        outcome: SendReceiptLike | None = None
        reason = ""
        if supplier is None:
            reason = f"supplier {proposal['supplier']!r} is not in the configuration"
        else:
            outcome, reason = await self._try_send(proposal, supplier)
        async with self._lock:
            current = self._need(proposal_id)
            at = now_ms()
            if outcome is not None:
                nxt = lifecycle.sent(
                    current, via=outcome.via, ref=outcome.ref, by=current["by"], at=at
                )
                events = [
                    purchase_event("purchase_ordered", current, line["sku"], int(line["qty"]), at)
                    for line in current["lines"]
                    if int(line["qty"]) > 0
                ]
                await self._put([nxt], events=events)
                log.info("purchasing: %s sent by %s (%s)", proposal_id, outcome.via, outcome.ref)
            else:
                nxt = lifecycle.send_failed(current, reason=reason, by=current["by"], at=at)
                await self._put([nxt])
                log.warning("purchasing: %s not sent: %s", proposal_id, reason)
        return copy.deepcopy(nxt)

    async def _try_send(
        self, proposal: Mapping[str, Any], supplier: Supplier
    ) -> tuple[SendReceiptLike | None, str]:
        reason = ""
        for attempt in range(1, self.send_attempts + 1):
            try:
                return await self.sender(proposal, supplier, self.settings), ""
            except Exception as exc:
                known = _send_error(exc)
                if known is None:
                    message, retryable = f"{type(exc).__name__}: {exc}", False
                else:
                    message, retryable = known
                reason = message if attempt == 1 else f"{message} (after {attempt} attempts)"
                if not retryable or attempt == self.send_attempts:
                    return None, reason
                wait = self.send_backoff_s * 2 ** (attempt - 1)
                log.info(
                    "purchasing: sending %s failed (%s); retry %d in %.1f s",
                    proposal["proposal_id"],
                    message,
                    attempt,
                    wait,
                )
                await asyncio.sleep(wait)
        return None, reason

    # -- receipts, lateness, following ----------------------------------------------------

    async def receive(
        self, movement: Mapping[str, Any], *, then: Callable[[], Awaitable[None]] | None = None
    ) -> dict[str, Any] | None:
        """Apply one movement of ``stock.movements.v1`` if it is a receipt of a known purchase
        order; the new version, or None when it is not one (or was applied already).
        ``then`` runs under the lock once the new version is kept (the follower commits the
        movement's offset there, so no other change comes between the two)."""
        ref = movement.get("source_ref")
        if movement.get("type") != "receipt" or not ref or ref not in self._state:
            return None
        movement_id = str(movement["movement_id"])
        if movement_id in self._receipts_seen:
            return None
        async with self._lock:
            nxt = lifecycle.receive(
                self._state[ref],
                str(movement["sku"]),
                int(movement["delta_on_hand"]),
                ref=str(movement["event_id"]),
                at=now_ms(),
            )
            if nxt is None:
                log.warning(
                    "purchasing: receipt %s names %s, which is %s: ignored",
                    movement["event_id"],
                    ref,
                    self._state[ref]["status"],
                )
            else:
                await self._put([nxt])
                if then is not None:
                    await then()
                log.info("purchasing: %s %s: %s", ref, nxt["status"], nxt["note"])
            self._receipts_seen.add(movement_id)
        return copy.deepcopy(nxt)

    async def check_lateness(self) -> list[dict[str, Any]]:
        """Raise the one ``po_late`` alert of each open purchase order past its expected
        day (not raised yet by this process); returns the alerts raised."""
        today = self.today()
        raised = []
        for proposal in list(self._state.values()):
            days = lifecycle.days_late(proposal, today)
            if days <= 0 or proposal["proposal_id"] in self._late_alerted:
                continue
            at = now_ms()
            alert = late_alert(proposal, days, at)
            # each open line to the ledger too: it lists the pre-orders waiting for it
            late = [
                purchase_event("purchase_late", proposal, sku, units, at)
                for sku, units in lifecycle.open_units(proposal).items()
                if units > 0
            ]
            assert self._publisher is not None
            async with self._lock:
                await self._publisher.send(
                    [
                        (STOCK_ALERTS, alert["sku"], alert),
                        *((STOCK_EVENTS, e["sku"], e) for e in late),
                    ]
                )
                self._late_alerted.add(proposal["proposal_id"])
            log.warning("purchasing: %s", alert["message"])
            raised.append(alert)
        return raised

    async def _follow_proposals(self) -> None:
        assert self._reader is not None
        while True:
            try:
                records = await self._reader.poll()
            except Exception as exc:
                log.warning(
                    "purchasing: following %s failed (%s); retrying",
                    REPLENISHMENT_PROPOSALS.name,
                    exc,
                )
                await asyncio.sleep(1)
                continue
            if records:
                async with self._lock:
                    for record in records:
                        self._take(record)

    async def _follow_receipts(self) -> None:
        assert self._receipts is not None
        while True:
            try:
                reader = self._receipts
                movements = await reader.poll()
                await reader.bookmark()
                if reader.assigned.is_set():
                    self.receipts_ready.set()  # a receipt written from now on is read
                for movement, partition, offset in movements:
                    await self.receive(movement, then=partial(reader.commit, partition, offset))
                if movements:
                    await reader.commit()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("purchasing: following receipts failed (%s); retrying", exc)
                await asyncio.sleep(1)

    async def _watch_lateness(self) -> None:
        while True:
            try:
                await self.check_lateness()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("purchasing: lateness check failed (%s); retrying", exc)
            await asyncio.sleep(self.late_every_s)

    # -- the one way a change is made -----------------------------------------------------

    def _need(self, proposal_id: str) -> dict[str, Any]:
        found = self._state.get(proposal_id)
        if found is None:
            raise UnknownProposal(proposal_id)
        return found

    def _take(self, record: dict[str, Any]) -> None:
        """A record read from the topic: kept when newer than what is known. Another version
        with a number this service already used means a second writer: said loudly, since
        its changes and this one's now disagree (run one purchasing service)."""
        known = self._state.get(record["proposal_id"])
        if lifecycle.later(known, record):
            self._state[record["proposal_id"]] = record
        elif known is not None and known["version"] == record["version"] and known != record:
            log.error(
                "purchasing: %s version %s was written differently by another process; run "
                "one purchasing service per deployment (`stockflow replenish run` or "
                "`stockflow web`, not both)",
                record["proposal_id"],
                record["version"],
            )

    async def _put(
        self, versions: list[dict[str, Any]], *, events: Sequence[dict[str, Any]] = ()
    ) -> None:
        """Publish ``events`` then ``versions`` (each exactly one more than the known
        version, or 1 for a new id) and wait for Kafka; then keep the versions. Caller holds
        the lock."""
        assert self._lock.locked(), "changes are made under the service's lock"
        if self._publisher is None:
            raise RuntimeError("the purchasing service is not started; call start() first")
        for record in versions:
            known = self._state.get(record["proposal_id"])
            want = 1 if known is None else int(known["version"]) + 1
            if int(record["version"]) != want:
                raise RuntimeError(
                    f"{record['proposal_id']}: version {record['version']} after "
                    f"{want - 1}; versions go up by one"
                )
        batch: list[tuple[TopicSpec, str, dict[str, Any]]] = [
            (STOCK_EVENTS, e["sku"], e) for e in events
        ]
        batch += [(REPLENISHMENT_PROPOSALS, r["proposal_id"], r) for r in versions]
        await self._publisher.send(batch)
        for record in versions:
            self._state[record["proposal_id"]] = record
