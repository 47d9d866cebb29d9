"""The purchasing part of the demo's day: desk lamps cross their low-stock line, the buyer is
emailed, the store's till asks for a plan, the small lamp order goes to its supplier by
itself, the big chair order is approved by a person on the ordering page, and the lamps'
delivery consumes the incoming units.

Everything goes through the product's own doors: events through the worker's
``POST /v1/events``, the plan through the till's ``POST /v1/replenishment/trigger`` of
``stockflow web``, the approval through the page's login (password and TOTP) and approve
form. The suppliers' and the buyer's mailbox is a local SMTP server (aiosmtpd) that keeps
what it receives.
"""

from __future__ import annotations

import asyncio
import email
import re
import secrets
import threading
import time
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from deploy.demo.tail import TopicTail
from deploy.local.credentials import ensure_token
from streams.kernel.access.tokens import REPLENISH
from streams.kernel.settings import Settings
from streams.kernel.topics import REPLENISHMENT_PROPOSALS
from streams.web.users import UserStore

WAREHOUSE = "paris-wh"
BUYER = "buyer@demo.example"  # configuration only: records carry the recipient id
APPROVER = "approver"
LAMPS_RECEIVED = 12
LAMPS_SOLD = 3
WAIT_S = 60.0


def replenishment_config(chair: str, lamp: str) -> dict[str, Any]:
    """Two suppliers: lamps are small and go out by themselves, chairs wait for a person."""
    return {
        "plan_every_seconds": 86_400,  # the demo plans when the till asks
        "suppliers": [
            {
                "id": "lumen",
                "name": "Lumen Lighting",
                "send_via": "email",
                "email": ["orders@lumen.example"],
                "lead_time_days": 3,
                "currency": "EUR",
                "auto_send": {"max_total": 50_000, "max_change_percent": 50, "first_order": True},
            },
            {
                "id": "acme",
                "name": "ACME Furniture",
                "send_via": "email",
                "email": ["orders@acme.example"],
                "lead_time_days": 5,
                "currency": "EUR",
                "auto_send": {"max_total": 100_000, "max_change_percent": 25},
            },
        ],
        "items": [
            {
                "sku": lamp,
                "supplier": "lumen",
                "supplier_sku": "LUM-DL-2",
                "unit_cost": 1_200,
                "pack_size": 4,
                "moq": 8,
            },
            {
                "sku": chair,
                "supplier": "acme",
                "supplier_sku": "ACME-OC-1",
                "unit_cost": 4_500,
                "pack_size": 6,
                "moq": 12,
            },
        ],
        "policies": [
            {"sku": lamp, "location": WAREHOUSE, "kind": "min_max", "min": 10, "max": 30},
            {"sku": chair, "location": WAREHOUSE, "kind": "min_max", "min": 50, "max": 150},
        ],
    }


def notifications_config(lamp: str) -> dict[str, Any]:
    """The buyer hears of the lamps crossing their low-stock line, by email."""
    return {
        "recipients": [{"id": "buyer", "email": BUYER}],
        "rules": [{"name": "lamps-low", "kinds": ["low_stock"], "skus": [lamp],
                   "recipients": ["buyer"]}],
    }  # fmt: skip


def add_approver(path: Path) -> tuple[str, str]:
    """Writes the page's users file with one approver of a fresh random password; returns
    (password, TOTP secret): the demo logs in as a person would, with both."""
    password = secrets.token_urlsafe(18)
    user = UserStore(path).add(APPROVER, "approver", password, replace=True)
    assert user.totp_secret is not None  # approvers always get a second factor
    return password, user.totp_secret


class Mailbox:
    """A local SMTP server keeping every message it receives (suppliers and the buyer)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        raw = envelope.original_content or b""
        with self._lock:
            self.messages.append(email.message_from_bytes(raw))
        return "250 OK"

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def find(self, subject_part: str) -> Message | None:
        with self._lock:
            for message in self.messages:
                if subject_part in str(message.get("Subject", "")):
                    return message
        return None

    async def wait(self, subject_part: str, what: str) -> Message:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = self.find(subject_part)
            if found is not None:
                return found
            await asyncio.sleep(0.3)
        raise RuntimeError(f"timed out after {WAIT_S:.0f} s waiting for {what} in the mailbox")


def attachments(message: Message) -> list[str]:
    return [part.get_filename() or "" for part in message.walk() if part.get_filename()]


class ProposalStates(TopicTail):
    """The last version of each proposal holding one of ``skus``, from now on."""

    def __init__(self, settings: Settings, skus: set[str]) -> None:
        self.skus = skus
        self.last: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        super().__init__(settings, (REPLENISHMENT_PROPOSALS,), "proposals")

    def take(self, name: str, record: dict[str, Any]) -> None:
        if not any(line["sku"] in self.skus for line in record.get("lines", [])):
            return
        with self._lock:
            had = self.last.get(record["proposal_id"])
            if had is None or had["version"] < record["version"]:
                self.last[record["proposal_id"]] = record

    def get(self, proposal_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.last.get(proposal_id)


class PurchasingDay:
    """Plays the purchasing steps and keeps what the summary shows."""

    def __init__(
        self,
        settings: Settings,
        worker_url: str,
        web_url: str,
        mailbox: Mailbox,
        *,
        chair: str,
        lamp: str,
        approver: tuple[str, str],
    ) -> None:
        self.settings = settings
        self.worker_url = worker_url
        self.web_url = web_url
        self.mailbox = mailbox
        self.chair = chair
        self.lamp = lamp
        self.password, secret = approver
        self.totp = pyotp.TOTP(secret)
        self.states = ProposalStates(settings, {chair, lamp})
        self.lines: list[str] = []
        self.steps: list[str] = []

    def close(self) -> None:
        self.states.stop()

    def say(self, line: str) -> None:
        self.steps.append(line)
        print(f"[demo] {line}", flush=True)

    async def play(self, http: aiohttp.ClientSession, post_events: Any) -> None:
        await self._lamps_run_low(http, post_events)
        alert = await self.mailbox.wait(self.lamp, "the buyer's low-stock email")
        self.say(f"the buyer was emailed: {alert['Subject']}")
        proposals = await self._till_asks_for_a_plan()
        lamp_po = self._proposal_of(proposals, self.lamp)
        chair_po = self._proposal_of(proposals, self.chair)
        lamp_mail = await self.mailbox.wait(lamp_po["proposal_id"], "the lamp order's email")
        self.say(
            f"{lamp_po['proposal_id']} ({_units(lamp_po)} lamps, {_money(lamp_po)}) went to "
            f"Lumen by itself: {', '.join(attachments(lamp_mail))} attached"
        )
        self.say(
            f"{chair_po['proposal_id']} ({_units(chair_po)} chairs, {_money(chair_po)}) waits "
            f"for a person: {chair_po['review_reason']}"
        )
        await self._approve_on_the_page(chair_po["proposal_id"])
        chair_mail = await self.mailbox.wait(chair_po["proposal_id"], "the chair order's email")
        self.say(
            f"approved on the page by {APPROVER} (password + TOTP): {chair_po['proposal_id']} "
            f"sent to ACME, {', '.join(attachments(chair_mail))} attached"
        )
        incoming = await self._incoming(http, self.lamp)
        self.say(f"the ledger's incoming lamps at {WAREHOUSE}: {incoming}")
        await self._lamps_arrive(http, post_events, lamp_po)

    async def _lamps_run_low(self, http: aiohttp.ClientSession, post_events: Any) -> None:
        stamp = f"demo-{self.lamp}"
        await post_events(
            [{"event_id": f"{stamp}-receipt", "type": "receipt", "sku": self.lamp,
              "qty": LAMPS_RECEIVED, "location": WAREHOUSE, "reason": "opening stock"}]
            + [{"event_id": f"{stamp}-sale-{n}", "type": "sale", "sku": self.lamp, "qty": 1,
                "location": WAREHOUSE, "channel": "store"} for n in range(LAMPS_SOLD)]
        )  # fmt: skip
        left = LAMPS_RECEIVED - LAMPS_SOLD
        await self._until_available(http, self.lamp, left)
        self.say(f"{LAMPS_SOLD} desk lamps sold at the till: {left} left, below the line of 10")
        # the plan reads stock from ClickHouse: wait for the sink to have the lamps' movements
        await asyncio.to_thread(_wait_movements, self.settings, self.lamp, 1 + LAMPS_SOLD)

    async def _till_asks_for_a_plan(self) -> list[dict[str, Any]]:
        token = await asyncio.to_thread(
            ensure_token, self.settings, "demo-till", (REPLENISH,), locations=(WAREHOUSE,)
        )
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{self.web_url}/v1/replenishment/trigger"
        async with (
            aiohttp.ClientSession(headers=headers) as till,
            till.post(url, json={"store": WAREHOUSE}) as answer,
        ):
            body = await answer.json(content_type=None)
            if answer.status != 200:
                raise RuntimeError(f"the till's plan was refused ({answer.status}): {body}")
        proposals: list[dict[str, Any]] = body["proposals"]
        self.say(
            f"the till asked for a plan of {WAREHOUSE}: {len(proposals)} proposal(s), "
            + "; ".join(f"{p['supplier']} {p['status']}" for p in proposals)
        )
        return proposals

    def _proposal_of(self, proposals: list[dict[str, Any]], sku: str) -> dict[str, Any]:
        for proposal in proposals:
            if any(line["sku"] == sku and line["qty"] > 0 for line in proposal["lines"]):
                return proposal
        raise RuntimeError(f"the plan proposed no order of {sku}: {proposals}")

    async def _approve_on_the_page(self, proposal_id: str) -> None:
        jar = aiohttp.CookieJar(unsafe=True)  # 127.0.0.1 is an address, not a domain
        async with aiohttp.ClientSession(cookie_jar=jar) as page:
            form = await _csrf(page, f"{self.web_url}/login")
            login = {"csrf": form, "next": "/", "login": APPROVER,
                     "password": self.password, "code": self.totp.now()}  # fmt: skip
            async with page.post(f"{self.web_url}/login", data=login) as answer:
                if "/login" in str(answer.url):
                    raise RuntimeError("the ordering page refused the demo approver's login")
            url = f"{self.web_url}/proposals/{proposal_id}"
            token = await _csrf(page, url)
            async with page.post(f"{url}/approve", data={"csrf": token}) as answer:
                if answer.status >= 400:
                    raise RuntimeError(f"the page refused the approval ({answer.status})")

    async def _lamps_arrive(
        self, http: aiohttp.ClientSession, post_events: Any, po: dict[str, Any]
    ) -> None:
        units = _units(po)
        await post_events(
            [{"event_id": f"demo-{self.lamp}-po-receipt", "type": "receipt", "sku": self.lamp,
              "qty": units, "location": WAREHOUSE, "source_ref": po["proposal_id"],
              "reason": "supplier delivery"}]
        )  # fmt: skip
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            state = self.states.get(po["proposal_id"])
            if state is not None and state["status"] == "received":
                break
            await asyncio.sleep(0.3)
        else:
            raise RuntimeError(f"timed out waiting for {po['proposal_id']} to be received")
        incoming = await self._incoming(http, self.lamp)
        self.say(
            f"{units} lamps delivered against {po['proposal_id']}: purchase order received, "
            f"incoming back to {incoming}"
        )

    async def _stock(self, http: aiohttp.ClientSession, sku: str) -> dict[str, Any]:
        async with http.get(f"{self.worker_url}/v1/stock/{sku}") as answer:
            return await answer.json() if answer.status == 200 else {}

    async def _incoming(self, http: aiohttp.ClientSession, sku: str) -> int:
        place = (await self._stock(http, sku)).get("locations", {}).get(WAREHOUSE, {})
        return int(place.get("incoming", 0))

    async def _until_available(self, http: aiohttp.ClientSession, sku: str, qty: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            place = (await self._stock(http, sku)).get("locations", {}).get(WAREHOUSE, {})
            if place.get("available") == qty:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"timed out waiting for {qty} {sku} available at {WAREHOUSE}")

    def summary(self) -> list[str]:
        out = ["purchasing (replenishment.proposals.v1, last version of each):"]
        with self.states._lock:
            states = sorted(self.states.last.values(), key=lambda p: p["proposal_id"])
        for p in states:
            out.append(
                f"  {p['proposal_id']:<34} {p['supplier']:<6} {p['status']:<10} "
                f"{_units(p):>4} units {_money(p):>12}  by {p['by']}"
            )
        subjects = [str(m.get("Subject", "")) for m in self.mailbox.messages]
        out.append(f"emails received by the local mailbox: {len(subjects)}")
        out += [f"  {subject}" for subject in subjects]
        return out


async def _csrf(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as answer:
        html = await answer.text()
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    if found is None:
        raise RuntimeError(f"no form on {url} (status {answer.status})")
    return found.group(1)


def _units(proposal: dict[str, Any]) -> int:
    return sum(int(line["qty"]) for line in proposal["lines"])


def _money(proposal: dict[str, Any]) -> str:
    return f"{proposal['total'] / 100:,.2f} {proposal['currency']}"


def _wait_movements(settings: Settings, sku: str, count: int) -> None:
    from streams.warehouse.clickhouse import connect, database_name

    client = connect(settings)
    table = f"{database_name(settings)}.stock_movements"
    deadline = time.monotonic() + WAIT_S
    try:
        while time.monotonic() < deadline:
            rows = client.execute(
                f"SELECT uniqExact(movement_id) FROM {table} WHERE sku = %(sku)s",  # noqa: S608
                {"sku": sku},
            )
            if int(rows[0][0]) >= count:
                return
            time.sleep(0.5)
    finally:
        client.disconnect()
    raise RuntimeError(f"timed out waiting for the sink to store {sku}'s movements")
