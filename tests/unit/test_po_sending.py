"""Sending purchase orders to real local servers: SMTP (aiosmtpd), SFTP (asyncssh's server),
a folder, and an HTTP webhook receiver (aiohttp); failures are told apart as retryable or not,
and their messages carry no secret and no full address."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import email
import email.policy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from aiohttp import web
from aiosmtpd import smtp as smtpd
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from pydifact.segmentcollection import Interchange

from streams.kernel.settings import Secret, Settings, load
from streams.purchasing.sending import (
    SendError,
    SendReceipt,
    parse_sftp_url,
    send_purchase_order,
)
from streams.replenishment.model import SendVia, Supplier
from tests.support.ports import free_port
from tests.unit.schema_samples import SAMPLES

pytestmark = pytest.mark.filterwarnings("ignore::pydifact.exceptions.MissingImplementationWarning")

PO = "PO-acme-paris-wh-20261130-1"
SMTP_PASSWORD = "smtp-pass-5up3r"
SFTP_PASSWORD = "sftp-pass-s3cr3t"
WEBHOOK_SECRET = "whsec-0123456789"


def proposal() -> dict[str, Any]:
    record = copy.deepcopy(SAMPLES["stockflow.v1.Proposal"])
    second = dict(record["lines"][0], sku="lamp", supplier_sku="ACME-LA-7", qty=8, pack_size=4)
    removed = dict(record["lines"][0], sku="table", supplier_sku="ACME-TB-2", qty=0)
    record["lines"] = [record["lines"][0], second, removed]
    return record


def supplier(**changes: Any) -> Supplier:
    base = Supplier(
        id="acme",
        name="Acme Supplies",
        send_via=SendVia.EMAIL,
        lead_time_days=5,
        email=("orders@acme.example", "backup@acme.example"),
        edi_sender="4012345000009",
        edi_recipient="ACME-EDI",
    )
    return dataclasses.replace(base, **changes)


def settings(**changes: Any) -> Settings:
    return dataclasses.replace(load(), **{"send_timeout_s": 5.0, **changes})


def send(record: dict[str, Any], sup: Supplier, conf: Settings) -> SendReceipt:
    return asyncio.run(send_purchase_order(record, sup, conf))


# ---------------------------------------------------------------------------- email


class Inbox:
    """An aiosmtpd handler keeping what it accepted; refuses the addresses in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: smtpd.SMTP, session: Session, envelope: Envelope, address: str, _: Any
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: smtpd.SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted"


def _authenticate(
    server: smtpd.SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data == (b"buyer", SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@contextmanager
def smtp_server(inbox: Inbox, *, auth: bool = False) -> Iterator[int]:
    port = free_port()
    extra: dict[str, Any] = {}
    if auth:
        extra = {"authenticator": _authenticate, "auth_require_tls": False}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_an_email_order_sent_again_carries_the_same_message_id() -> None:
    """Given a PO sent by email, When the same version is sent again (a resend after a crash
    before it was recorded), Then both messages carry the same Message-ID, which names the
    PO and its version, so the supplier's mail system can tell it is the same order."""
    inbox = Inbox()
    with smtp_server(inbox) as port:
        first = send(proposal(), supplier(), settings(smtp_port=port))
        again = send(proposal(), supplier(), settings(smtp_port=port))
    assert first.ref == again.ref
    assert first.ref.startswith(f"<{PO}.v") and first.ref.endswith(">")
    assert [m["Message-ID"].strip() for _, m in inbox.messages] == [first.ref, first.ref]


def test_an_email_order_arrives_with_the_pdf_and_csv_attached_and_its_message_id() -> None:
    """Given a local SMTP server, When a PO is sent by email, Then one message reaches both
    supplier addresses, with ``<PO>.pdf`` (application/pdf, a PDF) and ``<PO>.csv``
    (text/csv, the order's header and two lines) attached, and the receipt's ref is its
    Message-ID."""
    inbox = Inbox()
    with smtp_server(inbox) as port:
        receipt = send(proposal(), supplier(), settings(smtp_port=port, po_buyer="Maison M"))
    assert receipt.via == "email"
    [(rcpt, msg)] = inbox.messages
    assert rcpt == ["orders@acme.example", "backup@acme.example"]
    assert msg["Message-ID"].strip() == receipt.ref and receipt.ref.startswith("<")  # folded
    assert msg["Subject"] == f"Purchase order {PO} from Maison M"
    files = {part.get_filename(): part for part in msg.iter_attachments()}
    assert set(files) == {f"{PO}.pdf", f"{PO}.csv"}
    assert files[f"{PO}.pdf"].get_content_type() == "application/pdf"
    assert files[f"{PO}.pdf"].get_content().startswith(b"%PDF-")
    assert files[f"{PO}.csv"].get_content_type() == "text/csv"
    csv_rows = files[f"{PO}.csv"].get_content().strip().splitlines()
    assert csv_rows[0].startswith("po_number,supplier,location") and len(csv_rows) == 3
    body = msg.get_body(("plain",))
    assert body is not None and "2 lines, 640.00 EUR" in body.get_content()


def test_an_smtp_login_is_made_when_configured_and_a_refused_login_is_not_retried() -> None:
    """Given an SMTP server asking for a login, When the PO is sent with the right password,
    Then it arrives; When sent with a wrong one, Then SendError is not retryable, names the
    settings to fix and does not show the password."""
    inbox = Inbox()
    with smtp_server(inbox, auth=True) as port:
        good = settings(smtp_port=port, smtp_user="buyer", smtp_password=Secret(SMTP_PASSWORD))
        send(proposal(), supplier(), good)
        bad = dataclasses.replace(good, smtp_password=Secret("wrong-" + SMTP_PASSWORD))
        with pytest.raises(SendError) as refused:
            send(proposal(), supplier(), bad)
    assert len(inbox.messages) == 1
    assert not refused.value.retryable
    assert "STOCKFLOW_SMTP_PASSWORD" in refused.value.message
    assert SMTP_PASSWORD not in str(refused.value)


def test_a_refused_recipient_is_not_retried_and_the_address_is_masked() -> None:
    """Given an SMTP server refusing the supplier's only address (550), When the PO is sent,
    Then SendError is not retryable and its message shows the code and a masked address
    (``o***@acme.example``), never the address itself."""
    inbox = Inbox(refuse=("orders@acme.example",))
    with smtp_server(inbox) as port, pytest.raises(SendError) as refused:
        send(proposal(), supplier(email=("orders@acme.example",)), settings(smtp_port=port))
    assert not refused.value.retryable
    assert "550" in refused.value.message and "o***@acme.example" in refused.value.message
    assert "orders@acme.example" not in str(refused.value)
    assert inbox.messages == []


def test_starttls_asked_of_a_relay_that_does_not_offer_it_is_not_retried() -> None:
    """Given STOCKFLOW_SMTP_STARTTLS=1 and a relay without STARTTLS, When the PO is sent, Then
    nothing goes out in clear: SendError is not retryable and names the setting."""
    inbox = Inbox()
    with smtp_server(inbox) as port, pytest.raises(SendError) as plain:
        send(proposal(), supplier(), settings(smtp_port=port, smtp_starttls=True))
    assert not plain.value.retryable and "STOCKFLOW_SMTP_STARTTLS" in plain.value.message
    assert inbox.messages == []


def test_an_smtp_server_that_is_down_is_retryable() -> None:
    """Given no SMTP server on the port, When the PO is sent by email, Then SendError is
    retryable."""
    with pytest.raises(SendError) as down:
        send(proposal(), supplier(), settings(smtp_port=free_port()))
    assert down.value.retryable and "could not be reached" in down.value.message


# ---------------------------------------------------------------------------- EDI


def _read_orders(data: bytes) -> Interchange:
    return Interchange.from_str(data.decode("iso-8859-1"))


def test_an_edi_order_is_written_whole_to_the_folder_under_its_po_number(tmp_path: Path) -> None:
    """Given a supplier whose EDI folder is a local folder, When the PO is sent, Then the
    folder holds exactly ``ORDERS_<PO>_v2.edi`` (no temporary file left), pydifact reads
    an ORDERS message with the two ordered quantities, and the ref is the file name."""
    edi = supplier(send_via=SendVia.EDI, edi_folder=str(tmp_path))
    receipt = send(proposal(), edi, settings(edifact_syntax="D01B"))
    assert receipt == SendReceipt(via="edi", ref=f"ORDERS_{PO}_v2.edi")
    assert [p.name for p in tmp_path.iterdir()] == [receipt.ref]
    orders = _read_orders((tmp_path / receipt.ref).read_bytes())
    assert [s.elements[0][1] for s in orders.get_segments("QTY")] == ["24", "8"]
    unh = orders.get_segment("UNH")
    assert unh is not None and unh.elements[1] == ["ORDERS", "D", "01B", "UN"]


def test_an_edi_folder_that_does_not_exist_is_not_retried(tmp_path: Path) -> None:
    """Given an EDI folder path that does not exist, When the PO is sent, Then SendError is
    not retryable and names the folder."""
    edi = supplier(send_via=SendVia.EDI, edi_folder=str(tmp_path / "missing"))
    with pytest.raises(SendError) as missing:
        send(proposal(), edi, settings())
    assert not missing.value.retryable and "does not exist" in missing.value.message


class _PasswordServer(asyncssh.SSHServer):
    """Logs ``acme`` in with SFTP_PASSWORD, or with the key in ``client_key`` when set."""

    client_key: asyncssh.SSHKey | None = None

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "acme" and password == SFTP_PASSWORD

    def public_key_auth_supported(self) -> bool:
        return self.client_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        wanted = self.client_key
        return username == "acme" and wanted is not None and key.public_data == wanted.public_data


@asynccontextmanager
async def sftp_server(root: Path, known_hosts: Path) -> AsyncIterator[int]:
    """An SFTP server on a free loopback port, password login, chrooted to ``root``; its
    host key written to ``known_hosts``."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=_PasswordServer,
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
    )
    port = server.get_port()
    public = host_key.export_public_key().decode().strip()
    await asyncio.to_thread(known_hosts.write_text, f"[127.0.0.1]:{port} {public}\n")
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


def test_an_edi_order_is_uploaded_by_sftp_with_a_password_and_a_known_host_key(
    tmp_path: Path,
) -> None:
    """Given a local SFTP server (password login, host key in a known_hosts file), When the
    PO is sent to sftp://acme@127.0.0.1:<port>/inbox, Then the inbox holds exactly the
    ORDERS file, which pydifact reads back with both lines."""
    root, known = tmp_path / "root", tmp_path / "known_hosts"
    (root / "inbox").mkdir(parents=True)

    async def scenario() -> SendReceipt:
        async with sftp_server(root, known) as port:
            edi = supplier(send_via=SendVia.EDI, edi_folder=f"sftp://acme@127.0.0.1:{port}/inbox")
            conf = settings(sftp_password=Secret(SFTP_PASSWORD), sftp_known_hosts=str(known))
            return await send_purchase_order(proposal(), edi, conf)

    receipt = asyncio.run(scenario())
    assert [p.name for p in (root / "inbox").iterdir()] == [f"ORDERS_{PO}_v2.edi"]
    orders = _read_orders((root / "inbox" / receipt.ref).read_bytes())
    assert len(list(orders.get_segments("LIN"))) == 2


def test_a_wrong_sftp_password_or_an_unknown_host_key_is_not_retried(tmp_path: Path) -> None:
    """Given the local SFTP server, When the PO is sent with a wrong password, Then SendError is
    not retryable and shows neither password; When the known_hosts file holds another key for
    the server, Then SendError is not retryable and says the host key is not trusted; nothing
    is written either way."""
    root, known = tmp_path / "root", tmp_path / "known_hosts"
    root.mkdir()

    async def scenario() -> tuple[SendError, SendError]:
        async with sftp_server(root, known) as port:
            edi = supplier(send_via=SendVia.EDI, edi_folder=f"sftp://acme@127.0.0.1:{port}/")
            wrong = "wrong-" + SFTP_PASSWORD
            conf = settings(sftp_password=Secret(wrong), sftp_known_hosts=str(known))
            with pytest.raises(SendError) as refused:
                await send_purchase_order(proposal(), edi, conf)
            other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
            await asyncio.to_thread(
                (tmp_path / "other_hosts").write_text, f"[127.0.0.1]:{port} {other}"
            )
            conf = settings(
                sftp_password=Secret(SFTP_PASSWORD), sftp_known_hosts=str(tmp_path / "other_hosts")
            )
            with pytest.raises(SendError) as untrusted:
                await send_purchase_order(proposal(), edi, conf)
            return refused.value, untrusted.value

    refused, untrusted = asyncio.run(scenario())
    assert not refused.retryable and "refused the login" in refused.message
    assert SFTP_PASSWORD not in str(refused)
    assert not untrusted.retryable and "host key is not trusted" in untrusted.message
    assert list(root.iterdir()) == []


def test_an_sftp_login_by_key_file_uploads_and_a_server_that_is_down_is_retryable(
    tmp_path: Path,
) -> None:
    """Given the local SFTP server accepting a client key, When the PO is sent with no password
    and ``?key_file=`` naming that key, Then the file arrives; When no server listens on the
    port, Then SendError is retryable."""
    root, known = tmp_path / "root", tmp_path / "known_hosts"
    root.mkdir()
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "acme_key"
    client_key.write_private_key(str(key_file))
    _PasswordServer.client_key = client_key

    async def scenario() -> SendError:
        async with sftp_server(root, known) as port:
            url = f"sftp://acme@127.0.0.1:{port}/?key_file={key_file}"
            conf = settings(sftp_known_hosts=str(known))
            await send_purchase_order(
                proposal(), supplier(send_via=SendVia.EDI, edi_folder=url), conf
            )
        url = f"sftp://acme@127.0.0.1:{free_port()}/?key_file={key_file}"
        down = supplier(send_via=SendVia.EDI, edi_folder=url)
        with pytest.raises(SendError) as failed:
            await send_purchase_order(proposal(), down, conf)
        return failed.value

    try:
        down = asyncio.run(scenario())
    finally:
        _PasswordServer.client_key = None
    assert [p.name for p in root.iterdir()] == [f"ORDERS_{PO}_v2.edi"]
    assert down.retryable and "could not be reached" in down.message


def test_an_sftp_url_with_a_password_in_it_is_refused_without_echoing_it() -> None:
    """Given an EDI folder URL carrying a password, When parsed, Then ValueError points to
    STOCKFLOW_SFTP_PASSWORD and does not repeat the password; a key file option is read."""
    with pytest.raises(ValueError, match="STOCKFLOW_SFTP_PASSWORD") as bad:
        parse_sftp_url("sftp://acme:hunter2@edi.example:2222/in")
    assert "hunter2" not in str(bad.value)
    target = parse_sftp_url("sftp://acme@edi.example/in?key_file=/etc/keys/acme")
    assert (target.port, target.path, target.key_file) == (22, "/in", "/etc/keys/acme")


# ---------------------------------------------------------------------------- webhook


@asynccontextmanager
async def webhook_receiver(answers: list[int], seen: list[dict[str, Any]]) -> AsyncIterator[str]:
    """A receiver checking the signature with the shared secret; answers the next status of
    ``answers`` (a 0 sleeps past the sender's timeout)."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(request.headers.get("X-Stockflow-Signature", ""), expected)
        seen.append(
            {"signed": signed, "key": request.headers.get("Idempotency-Key"), **json.loads(body)}
        )
        status = answers.pop(0) if answers else 200
        if status == 0:
            await asyncio.sleep(1.5)
            status = 200
        if not signed:
            return web.json_response({"error": "bad signature"}, status=401)
        if status == 200:
            return web.json_response({"id": f"wh-{len(seen)}"})
        return web.json_response({"error": f"answered {status}"}, status=status)

    app = web.Application()
    app.router.add_post("/orders", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/orders?token=abc"
    finally:
        await runner.cleanup()


def test_a_webhook_order_is_signed_keyed_by_version_and_answered_with_its_id() -> None:
    """Given a receiver that checks X-Stockflow-Signature with the shared secret, When the PO
    is sent, Then the signature matches the body, Idempotency-Key is ``<PO>:2``, the body
    carries the two ordered lines, and the ref is the receiver's id."""
    seen: list[dict[str, Any]] = []

    async def scenario() -> SendReceipt:
        async with webhook_receiver([], seen) as url:
            hook = supplier(send_via=SendVia.WEBHOOK, webhook_url=url)
            return await send_purchase_order(
                proposal(), hook, settings(webhook_secret=Secret(WEBHOOK_SECRET))
            )

    assert asyncio.run(scenario()) == SendReceipt(via="webhook", ref="wh-1")
    [got] = seen
    assert got["signed"] and got["key"] == f"{PO}:2"
    assert [(li["sku"], li["qty"]) for li in got["lines"]] == [("chair", 24), ("lamp", 8)]
    assert got["total"] == 64000 and got["po_number"] == PO


def test_webhook_answers_decide_whether_a_send_is_retried() -> None:
    """Given a receiver answering 503, then 400, then too late, then with a wrong secret
    configured, When the PO is sent each time, Then 503 and the timeout are retryable, 400 and
    the refused signature (401) are not, and no message shows the secret or the URL's query."""
    seen: list[dict[str, Any]] = []

    async def scenario() -> list[SendError]:
        errors = []
        async with webhook_receiver([503, 400, 0], seen) as url:
            hook = supplier(send_via=SendVia.WEBHOOK, webhook_url=url)
            conf = settings(webhook_secret=Secret(WEBHOOK_SECRET), send_timeout_s=1.0)
            wrong = dataclasses.replace(conf, webhook_secret=Secret("not-" + WEBHOOK_SECRET))
            for each in (conf, conf, conf, wrong):
                with pytest.raises(SendError) as failed:
                    await send_purchase_order(proposal(), hook, each)
                errors.append(failed.value)
        return errors

    unavailable, bad_request, late, unsigned = asyncio.run(scenario())
    assert unavailable.retryable and "503" in unavailable.message
    assert not bad_request.retryable and "400" in bad_request.message
    assert late.retryable and "did not answer within 1 s" in late.message
    assert not unsigned.retryable and "401" in unsigned.message
    for error in (unavailable, bad_request, late, unsigned):
        assert WEBHOOK_SECRET not in str(error) and "token=abc" not in str(error)


def test_a_webhook_without_a_secret_is_not_sent() -> None:
    """Given no STOCKFLOW_WEBHOOK_SECRET, When a webhook PO is sent, Then SendError is not
    retryable and names the setting; nothing is posted."""
    hook = supplier(send_via=SendVia.WEBHOOK, webhook_url="http://127.0.0.1:9/orders")
    with pytest.raises(SendError, match="STOCKFLOW_WEBHOOK_SECRET") as unsigned:
        send(proposal(), hook, settings(webhook_secret=Secret("")))
    assert not unsigned.value.retryable
