"""The ordering page over a stand-in purchasing service, through aiohttp's test client:
login with the second factor, CSRF, roles, and what each screen shows and does."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.kernel.settings import Secret, load
from streams.web.app import make_app
from streams.web.sessions import LoginLimiter
from streams.web.users import UserStore
from tests.fakes.purchasing import FakePurchasing, line, proposal

PASSWORD = "correct horse battery"
Client = TestClient[Any, Any]


@pytest.fixture
def users(tmp_path: Path) -> UserStore:
    store = UserStore(tmp_path / "users.yaml")
    for name in ("viewer", "buyer", "approver", "admin"):
        store.add(f"{name}1", name, PASSWORD)
    return store


def _service() -> FakePurchasing:
    return FakePurchasing(
        proposal("PO-acme-paris-1", line("chair", 24), line("table", 12, pack=4, moq=4)),
        proposal(
            "PO-bolt-lyon-1", line("lamp", 6, pack=6, moq=6), supplier="bolt", location="lyon"
        ),
        {
            **proposal("PO-acme-paris-0", line("chair", 18)),
            "status": "sent",
            "expected_on": 10,  # 1970: long late
        },
    )


def run(
    users: UserStore,
    scenario: Callable[[Client, FakePurchasing], Awaitable[None]],
    *,
    service: FakePurchasing | None = None,
    limiter: LoginLimiter | None = None,
) -> None:
    fake = service or _service()
    settings = replace(load(), web_secret=Secret("unit-test-key"))

    async def go() -> None:
        app = make_app(fake, settings, users=users, limiter=limiter)
        async with TestClient(TestServer(app)) as client:
            await scenario(client, fake)

    asyncio.run(go())


async def csrf_of(client: Client, path: str) -> str:
    answer = await client.get(path)
    found = re.search(r'name="csrf" value="([^"]+)"', await answer.text())
    assert found, f"no CSRF token in {path}"
    return found.group(1)


async def login(client: Client, users: UserStore, name: str, *, code: str | None = None) -> Any:
    token = await csrf_of(client, "/login")
    user = users.get(name)
    assert user is not None
    if code is None and user.totp_secret:
        code = pyotp.TOTP(user.totp_secret).now()
    form = {"csrf": token, "login": name, "password": PASSWORD, "code": code or "", "next": "/"}
    return await client.post("/login", data=form, allow_redirects=False)


def test_every_page_asks_for_a_login_first(users: UserStore) -> None:
    """Given no session, when any page is asked for, then the answer is a redirect to the
    login form that comes back to the page; the login form itself and /health answer."""

    async def scenario(client: Client, _: FakePurchasing) -> None:
        for path in (
            "/proposals",
            "/proposals/PO-acme-paris-1",
            "/orders",
            "/sku/chair?location=x",
        ):
            answer = await client.get(path, allow_redirects=False)
            assert answer.status == 303, path
            assert answer.headers["Location"].startswith("/login?next=%2F"), path
        assert (await client.get("/login")).status == 200
        assert (await client.get("/health")).status == 200

    run(users, scenario)


def test_an_approver_needs_the_totp_code_and_gets_a_strict_http_only_session(
    users: UserStore,
) -> None:
    """Given an approver, when they log in without the code, then 401 says the code is
    needed; with a wrong code 401; with the current code 303 to this site's page (a ``next``
    naming another site is ignored) and a session cookie that is HttpOnly and
    SameSite=Strict; a buyer logs in without a code."""

    async def scenario(client: Client, _: FakePurchasing) -> None:
        missing = await login(client, users, "approver1", code=" ")
        assert missing.status == 401
        assert "6-digit code" in await missing.text()
        wrong = await login(client, users, "approver1", code="000000")
        assert wrong.status == 401
        token = await csrf_of(client, "/login")
        user = users.get("approver1")
        assert user is not None and user.totp_secret
        elsewhere = {
            "csrf": token,
            "login": "approver1",
            "password": PASSWORD,
            "code": pyotp.TOTP(user.totp_secret).now(),
            "next": "//evil.example/phish",
        }
        ok = await client.post("/login", data=elsewhere, allow_redirects=False)
        assert ok.status == 303 and ok.headers["Location"] == "/"  # never to another site
        cookie = ok.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        page = await client.get("/proposals")
        assert "approver1 (approver)" in await page.text()

    run(users, scenario)

    async def buyer(client: Client, _: FakePurchasing) -> None:
        assert (await login(client, users, "buyer1")).status == 303

    run(users, buyer)


def test_a_form_without_the_session_csrf_token_changes_nothing(users: UserStore) -> None:
    """Given a logged-in approver, when an approval is posted without the CSRF token or with
    another one, then 403 says the form expired and the service was not called."""

    async def scenario(client: Client, fake: FakePurchasing) -> None:
        await login(client, users, "approver1")
        url = "/proposals/PO-acme-paris-1/approve"
        assert (await client.post(url, data={})).status == 403
        refused = await client.post(url, data={"csrf": "forged"})
        assert refused.status == 403
        assert "expired" in await refused.text()
        assert fake.calls == []
        assert fake.state["PO-acme-paris-1"]["status"] == "proposed"

    run(users, scenario)


def test_login_attempts_are_limited_and_the_right_password_waits_too(
    users: UserStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Given a limit of 3 failures per login, when a buyer's password is wrong 3 times, then
    the next attempt with the right password is refused with 429 saying when to try again;
    the log names the login, never the password tried."""

    async def scenario(client: Client, _: FakePurchasing) -> None:
        for _ in range(3):
            token = await csrf_of(client, "/login")
            form = {"csrf": token, "login": "buyer1", "password": "guess-1234567"}
            assert (await client.post("/login", data=form)).status == 401
        locked = await login(client, users, "buyer1")
        assert locked.status == 429
        assert "Try again in about" in await locked.text()

    with caplog.at_level(logging.INFO, logger="stockflow.web"):
        run(users, scenario, limiter=LoginLimiter(per_login=3, per_address=10))
    assert "login=buyer1" in caplog.text
    assert "guess-1234567" not in caplog.text and PASSWORD not in caplog.text


def test_a_viewer_reads_but_cannot_edit_or_approve(users: UserStore) -> None:
    """Given a viewer, then the proposal page shows no quantity or approval form, and posting
    an edit or an approval anyway is refused with 403 naming the role; nothing changes."""

    async def scenario(client: Client, fake: FakePurchasing) -> None:
        await login(client, users, "viewer1")
        page = await client.get("/proposals/PO-acme-paris-1")
        text = await page.text()
        assert page.status == 200 and "chair" in text
        assert 'name="qty"' not in text and 'id="approve"' not in text
        token = await csrf_of(client, "/proposals/PO-acme-paris-1")
        edit = await client.post(
            "/proposals/PO-acme-paris-1/lines/chair", data={"csrf": token, "qty": "30"}
        )
        assert edit.status == 403 and "viewer" in await edit.text()
        approve = await client.post("/proposals/PO-acme-paris-1/approve", data={"csrf": token})
        assert approve.status == 403
        assert fake.calls == []

    run(users, scenario)


def test_a_buyer_edits_in_packs_and_a_wrong_quantity_is_refused_with_the_reason(
    users: UserStore,
) -> None:
    """Given a line of 24 in packs of 6, when a buyer sets 25, then 409 shows the service's
    pack-size message and the line keeps 24; 'ten' is refused as not a whole number; 30 is
    saved (303 back to the line, 'Quantity saved.'); the buyer may not approve (403)."""

    async def scenario(client: Client, fake: FakePurchasing) -> None:
        await login(client, users, "buyer1")
        token = await csrf_of(client, "/proposals/PO-acme-paris-1")
        url = "/proposals/PO-acme-paris-1/lines/chair"
        wrong = await client.post(url, data={"csrf": token, "qty": "25"})
        assert wrong.status == 409
        assert "pack size 6" in await wrong.text()
        word = await client.post(url, data={"csrf": token, "qty": "ten"})
        assert word.status == 400 and "whole number" in await word.text()
        assert fake.state["PO-acme-paris-1"]["lines"][0]["qty"] == 24
        saved = await client.post(url, data={"csrf": token, "qty": "30"}, allow_redirects=False)
        assert saved.status == 303
        assert saved.headers["Location"] == "/proposals/PO-acme-paris-1?done=saved#line-chair"
        after = await (await client.get(saved.headers["Location"])).text()
        assert "Quantity saved." in after
        assert fake.state["PO-acme-paris-1"]["lines"][0]["qty"] == 30
        assert fake.calls[-1] == ("edit_line", "PO-acme-paris-1", "chair", "30", "buyer1")
        approve = await client.post("/proposals/PO-acme-paris-1/approve", data={"csrf": token})
        assert approve.status == 403

    run(users, scenario)


def test_an_approver_approves_and_sends_rejects_and_sees_a_failed_send(users: UserStore) -> None:
    """Given an approver, when they approve a proposal, then the service is called with their
    login and the page says it was sent; approving it again is refused (409, the service's
    reason); when sending fails the page says so and offers a retry; a rejection carries its
    note."""

    async def scenario(client: Client, fake: FakePurchasing) -> None:
        await login(client, users, "approver1")
        token = await csrf_of(client, "/proposals/PO-acme-paris-1")
        sent = await client.post("/proposals/PO-acme-paris-1/approve", data={"csrf": token})
        text = await sent.text()
        assert sent.status == 200 and "Approved and sent to the supplier." in text
        assert fake.calls[-1] == ("approve", "PO-acme-paris-1", "approver1")
        again = await client.post("/proposals/PO-acme-paris-1/approve", data={"csrf": token})
        assert again.status == 409 and "is sent" in await again.text()
        fake.fail_sending = True
        failed = await client.post("/proposals/PO-bolt-lyon-1/approve", data={"csrf": token})
        failed_text = await failed.text()
        assert "sending failed" in failed_text and "Retry sending" in failed_text
        assert "SMTP refused the message" in failed_text
        rejected = await client.post(
            "/proposals/PO-bolt-lyon-1/reject", data={"csrf": token, "note": "too early"}
        )
        assert "Rejected." in await rejected.text()
        assert fake.calls[-1] == ("reject", "PO-bolt-lyon-1", "approver1", "too early")

    run(users, scenario)


def test_the_lists_filter_by_supplier_store_and_status_and_show_late_orders(
    users: UserStore,
) -> None:
    """Given two proposals to review and one sent order whose expected day has passed, then
    the proposals list shows both for review, one when filtered by supplier or store; the
    orders list shows the sent one marked late, under 'late' too; unknown ids are 404."""

    async def scenario(client: Client, _: FakePurchasing) -> None:
        await login(client, users, "viewer1")
        both = await (await client.get("/proposals")).text()
        assert "PO-acme-paris-1" in both and "PO-bolt-lyon-1" in both
        assert "PO-acme-paris-0" not in both
        bolt = await (await client.get("/proposals?supplier=bolt")).text()
        assert "PO-bolt-lyon-1" in bolt and "PO-acme-paris-1" not in bolt
        paris = await (await client.get("/proposals?store=paris")).text()
        assert "PO-acme-paris-1" in paris and "PO-bolt-lyon-1" not in paris
        orders = await (await client.get("/orders")).text()
        assert "PO-acme-paris-0" in orders and "status late" in orders
        late = await (await client.get("/orders?status=late")).text()
        assert "PO-acme-paris-0" in late and "PO-acme-paris-1" not in late
        assert (await client.get("/proposals/nope")).status == 404

    run(users, scenario)


def test_the_sku_page_shows_the_position_movements_and_an_inline_svg_chart(
    users: UserStore,
) -> None:
    """Given a SKU with a position, sales and a forecast, then its page shows incoming 24, a
    receipt movement, and an SVG chart (28 bars, a forecast line) inside the HTML; without a
    location it says which parameter to give (400)."""

    async def scenario(client: Client, _: FakePurchasing) -> None:
        await login(client, users, "viewer1")
        page = await client.get("/sku/chair?location=paris")
        text = await page.text()
        assert page.status == 200
        assert "<svg" in text and text.count('class="bar"') == 28
        assert 'class="forecast"' in text and "receipt" in text
        assert re.search(r"<dt>Incoming</dt><dd>24</dd>", text)
        missing = await client.get("/sku/chair")
        assert missing.status == 400 and "location=" in await missing.text()

    run(users, scenario)


def test_a_new_password_ends_the_sessions_opened_with_the_old_one(users: UserStore) -> None:
    """Given a logged-in buyer, when their password is replaced in the users file, then the
    next request goes back to the login form."""

    async def scenario(client: Client, _: FakePurchasing) -> None:
        await login(client, users, "buyer1")
        assert (await client.get("/proposals", allow_redirects=False)).status == 200
        users.add("buyer1", "buyer", "a new password!", replace=True)
        again = await client.get("/proposals", allow_redirects=False)
        assert again.status == 303 and again.headers["Location"].startswith("/login")

    run(users, scenario)


def test_pages_carry_a_strict_content_security_policy(users: UserStore) -> None:
    """Given any page, then it forbids scripts and foreign forms (CSP default-src 'none',
    form-action 'self') and is not cached."""

    async def scenario(client: Client, _: FakePurchasing) -> None:
        answer = await client.get("/login")
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        assert "form-action 'self'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["Cache-Control"] == "no-store"

    run(users, scenario)


def test_alerts_routed_to_the_page_are_listed_when_the_notifications_module_gives_them(
    users: UserStore, tmp_path: Path
) -> None:
    """Given a source of page alerts, then /alerts lists them newest first with a link to the
    SKU at its location and the menu shows Alerts; without one, /alerts is 404 and the menu
    has no Alerts entry."""
    asked: list[int] = []

    def recent(limit: int) -> list[dict[str, Any]]:
        asked.append(limit)
        return [
            {
                "alert_id": "a1",
                "kind": "low_stock",
                "sku": "chair",
                "location": "paris",
                "severity": "warning",
                "message": "chair at paris: 2 available, below 5",
                "rule": "r0",
                "recipient": "page",
                "alert_at_ms": 1_790_000_000_000,
                "delivered_at_ms": 1_790_000_000_500,
            }
        ]

    settings = replace(load(), web_secret=Secret("unit-test-key"))

    async def go(alerts: Any) -> tuple[int, str, str]:
        app = make_app(_service(), settings, users=users, alerts=alerts)
        async with TestClient(TestServer(app)) as client:
            await login(client, users, "viewer1")
            answer = await client.get("/alerts")
            menu = await (await client.get("/proposals")).text()
            return answer.status, await answer.text(), menu

    status, text, menu = asyncio.run(go(recent))
    assert status == 200 and asked == [50]
    assert "chair at paris: 2 available, below 5" in text
    assert 'href="/sku/chair?location=paris"' in text and 'href="/alerts"' in menu
    status, _, menu = asyncio.run(go(None))
    assert status == 404 and 'href="/alerts"' not in menu


def test_the_sku_page_without_forecast_and_with_clickhouse_down_says_what_happened(
    users: UserStore,
) -> None:
    """Given a SKU view without a forecast or position (nothing recorded yet), then the page
    says no movement is recorded; when the view fails (ClickHouse away), then 503 says the
    figures could not be read, instead of a bare server error."""

    class Bare(FakePurchasing):
        async def sku_view(self, sku: str, location: str) -> dict[str, Any]:
            if sku == "broken":
                raise ConnectionError("ClickHouse at 127.0.0.1:9000 refused the connection")
            return {"position": None, "daily_sales": [], "movements": [], "forecast": None}

    async def scenario(client: Client, _: FakePurchasing) -> None:
        await login(client, users, "viewer1")
        empty = await client.get("/sku/chair?location=paris")
        assert empty.status == 200 and "No movement of chair at paris" in await empty.text()
        broken = await client.get("/sku/broken?location=paris")
        assert broken.status == 503 and "could not be read now" in await broken.text()

    run(users, scenario, service=Bare())


def test_a_long_list_shows_the_newest_two_hundred_and_says_how_many_matched(
    users: UserStore,
) -> None:
    """Given 205 proposals to review, then the list shows 200, the newest first, and says
    200 of 205 matched."""
    many = [
        {**proposal(f"PO-{i:03d}", line("chair", 24)), "updated_at": 1_790_000_000_000 + i}
        for i in range(205)
    ]

    async def scenario(client: Client, _: FakePurchasing) -> None:
        await login(client, users, "viewer1")
        text = await (await client.get("/proposals")).text()
        assert text.count('class="card proposal"') == 200
        assert "The newest 200 of 205" in text
        assert "PO-204" in text and "PO-004" not in text

    run(users, scenario, service=FakePurchasing(*many))


def test_a_service_failure_during_an_approval_is_shown_as_such_with_the_proposal(
    users: UserStore,
) -> None:
    """Given a service whose publish fails (Kafka did not acknowledge), when an approver
    approves, then 503 shows the proposal as the service keeps it (still proposed) and says
    the approval could not be done now."""

    class Down(FakePurchasing):
        async def approve(self, proposal_id: str, by: str) -> dict[str, Any]:
            raise RuntimeError("Kafka did not acknowledge the proposal within 30 s")

    async def scenario(client: Client, _: FakePurchasing) -> None:
        await login(client, users, "approver1")
        token = await csrf_of(client, "/proposals/PO-acme-paris-1")
        answer = await client.post("/proposals/PO-acme-paris-1/approve", data={"csrf": token})
        text = await answer.text()
        assert answer.status == 503
        assert "The approval could not be done now" in text
        assert 'id="status">proposed<' in text

    run(users, scenario, service=Down(*_service().state.values()))
