"""Sending a purchase order to its supplier: email, EDIFACT (a folder or SFTP) or a webhook.

``send_purchase_order`` answers a ``SendReceipt`` (how it went and the sender's reference)
or raises ``SendError`` whose ``retryable`` says whether the same call may succeed later
(a server down, a timeout, a 5xx) or needs a person first (an address refused, a login
refused, a 4xx, a configuration missing). Messages name the supplier, the server and the
answer, never a password, a secret or a supplier's full email address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncssh

from streams.kernel.settings import Settings
from streams.kernel.sftp_url import SftpUrl
from streams.replenishment.documents import (
    DocumentError,
    edifact_file_name,
    format_money,
    order_lines,
    po_number,
    purchase_order_csv,
    purchase_order_edifact,
    purchase_order_json,
    purchase_order_pdf,
)
from streams.replenishment.model import SendVia, Supplier

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Stockflow-Signature"  # sha256=<hex HMAC-SHA256 of the body>
IDEMPOTENCY_HEADER = "Idempotency-Key"  # <proposal_id>:<version>


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """How the order went (``email``, ``edi``, ``webhook``) and the sender's reference: the
    email's Message-ID, the EDIFACT file name, or the webhook's answer id."""

    via: str
    ref: str


class SendError(Exception):
    """The order did not reach the supplier. ``retryable``: the same send may succeed later
    unchanged; otherwise a person must fix something first (the message says what)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


async def send_purchase_order(
    proposal: Mapping[str, Any], supplier: Supplier, settings: Settings
) -> SendReceipt:
    """Send ``proposal`` (a Proposal record) the way ``supplier.send_via`` says."""
    try:
        number = po_number(proposal)
        if not order_lines(proposal):
            raise DocumentError(f"purchase order {number} has no line above 0 units")
        if supplier.send_via == SendVia.EMAIL:
            receipt = await _send_email(proposal, supplier, settings)
        elif supplier.send_via == SendVia.EDI:
            receipt = await _send_edi(proposal, supplier, settings)
        elif supplier.send_via == SendVia.WEBHOOK:
            receipt = await _send_webhook(proposal, supplier, settings)
        else:
            raise SendError(
                f"supplier {supplier.id}: send_via {supplier.send_via!r} is not email, edi or "
                "webhook",
                retryable=False,
            )
    except DocumentError as exc:
        raise SendError(str(exc), retryable=False) from None
    log.info(
        "purchase order %s sent to supplier %s via %s ref=%s",
        proposal.get("proposal_id"),
        supplier.id,
        receipt.via,
        receipt.ref,
    )
    return receipt


# ---------------------------------------------------------------------------- email

_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mask_address(address: str) -> str:
    """``j***@example.com``: enough to tell addresses apart in a log, not to write to one."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _masked(text: str) -> str:
    """``text`` with every email address in it masked (servers quote refused addresses)."""
    return _ADDRESS.sub(lambda m: mask_address(m.group(0)), text)


def _smtp_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return _masked(f"{code} {text}".strip())


def _email_message(
    proposal: Mapping[str, Any], supplier: Supplier, settings: Settings
) -> EmailMessage:
    number = po_number(proposal)
    currency = str(proposal.get("currency") or supplier.currency)
    lines = order_lines(proposal)
    buyer = settings.po_buyer
    domain = settings.smtp_from.rpartition("@")[2] or "localhost"
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(supplier.email)
    msg["Subject"] = f"Purchase order {number} from {buyer}"
    msg["Date"] = formatdate(usegmt=True)  # when sent; the order's own date is in the PDF
    # the same purchase order version always carries the same Message-ID: a resend after a
    # crash between sending and recording it is recognisable as the same message
    version = int(proposal.get("version") or 0)
    local = re.sub(r"[^\w.-]", "_", number)
    msg["Message-ID"] = f"<{local}.v{version}@{domain}>"
    body = [
        f"Dear {supplier.name},",
        "",
        f"please find attached our purchase order {number} "
        f"({len(lines)} lines, {format_money(sum(li.total for li in lines), currency)}), "
        f"to be delivered to {proposal.get('location', '')}.",
        "",
        "Please quote the order number on the delivery note and the invoice.",
        "",
        buyer,
    ]
    msg.set_content("\n".join(body))
    stem = re.sub(r"[^\w.-]", "_", number)
    msg.add_attachment(
        purchase_order_pdf(proposal, supplier, buyer=buyer),
        maintype="application",
        subtype="pdf",
        filename=f"{stem}.pdf",
    )
    msg.add_attachment(
        purchase_order_csv(proposal, supplier),
        maintype="text",
        subtype="csv",
        filename=f"{stem}.csv",
    )
    return msg


async def _send_email(
    proposal: Mapping[str, Any], supplier: Supplier, settings: Settings
) -> SendReceipt:
    if not supplier.email:
        raise SendError(
            f"supplier {supplier.id} has no email address in the configuration", retryable=False
        )
    msg = _email_message(proposal, supplier, settings)
    await asyncio.to_thread(_smtp_send, msg, supplier, settings)
    return SendReceipt(via="email", ref=str(msg["Message-ID"]))


def _smtp_send(msg: EmailMessage, supplier: Supplier, settings: Settings) -> None:
    """Hand ``msg`` to the SMTP relay (blocking: run in a thread)."""
    server = f"SMTP {settings.smtp_host}:{settings.smtp_port}"
    recipients = ", ".join(mask_address(a) for a in supplier.email)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.send_timeout_s
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.reveal())
            refused = smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        answers = "; ".join(
            f"{mask_address(addr)}: {_smtp_text(code, reply)}"
            for addr, (code, reply) in exc.recipients.items()
        )
        retryable = all(400 <= code < 500 for code, _ in exc.recipients.values())
        raise SendError(
            f"{server} refused every recipient of supplier {supplier.id} ({answers}); "
            "check the supplier's email in the configuration",
            retryable=retryable,
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"{server} refused the login of {settings.smtp_user!r} "
            f"({_smtp_text(exc.smtp_code, exc.smtp_error)}); check STOCKFLOW_SMTP_USER and "
            "STOCKFLOW_SMTP_PASSWORD",
            retryable=False,
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(
            f"{server} does not offer what STOCKFLOW_SMTP_STARTTLS / STOCKFLOW_SMTP_USER ask "
            f"for ({exc}); change those settings or the relay",
            retryable=False,
        ) from None
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, ...
        raise SendError(
            f"{server} refused purchase order for supplier {supplier.id}: "
            f"{_smtp_text(exc.smtp_code, exc.smtp_error)}",
            retryable=400 <= exc.smtp_code < 500,
        ) from None
    except ssl.SSLError as exc:
        raise SendError(
            f"{server}: TLS failed ({exc.reason}); check the relay's certificate",
            retryable=False,
        ) from None
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, name unknown
        raise SendError(
            f"{server} could not be reached or dropped the connection ({type(exc).__name__}: "
            f"{_masked(str(exc))}); will retry",
            retryable=True,
        ) from None
    if refused:
        log.warning(
            "purchase order email for supplier %s: %d of its recipients refused (%s)",
            supplier.id,
            len(refused),
            ", ".join(mask_address(a) for a in refused),
        )
    log.info(
        "purchase order email for supplier %s handed to %s for %s", supplier.id, server, recipients
    )


# ---------------------------------------------------------------------------- EDI


async def _send_edi(
    proposal: Mapping[str, Any], supplier: Supplier, settings: Settings
) -> SendReceipt:
    if not supplier.edi_folder:
        raise SendError(
            f"supplier {supplier.id} sends by EDI but has no edi_folder", retryable=False
        )
    if not supplier.edi_sender:
        raise SendError(
            f"supplier {supplier.id} sends by EDI but has no edi_sender (our party id)",
            retryable=False,
        )
    content = purchase_order_edifact(
        proposal,
        supplier,
        buyer_id=supplier.edi_sender,
        syntax="D01B" if settings.edifact_syntax == "D01B" else "D96A",
    )
    name = edifact_file_name(proposal)
    if supplier.edi_folder.startswith("sftp://"):
        await _sftp_put(supplier, settings, name, content)
    else:
        await asyncio.to_thread(_folder_put, supplier, Path(supplier.edi_folder), name, content)
    return SendReceipt(via="edi", ref=name)


def _folder_put(supplier: Supplier, folder: Path, name: str, content: bytes) -> None:
    """Write ``content`` as ``folder/name`` atomically: a hidden temporary file in the same
    folder, flushed to disk, then renamed, so a reader never sees half a file."""
    if not folder.is_dir():
        raise SendError(
            f"supplier {supplier.id}: EDI folder {str(folder)!r} does not exist", retryable=False
        )
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / name)
        tmp = ""
    except PermissionError as exc:
        raise SendError(
            f"supplier {supplier.id}: EDI folder {str(folder)!r} is not writable ({exc.strerror})",
            retryable=False,
        ) from None
    except OSError as exc:
        raise SendError(
            f"supplier {supplier.id}: writing {name} to {str(folder)!r} failed ({exc.strerror})",
            retryable=True,
        ) from None
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def parse_sftp_url(url: str) -> SftpUrl:
    """The parts of an EDI folder URL (see :mod:`streams.kernel.sftp_url`)."""
    return SftpUrl.parse(url, "EDI folder")


async def _sftp_put(supplier: Supplier, settings: Settings, name: str, content: bytes) -> None:
    """Upload to a temporary name in the target folder, then rename over the final name.
    The server's host key must be in ``STOCKFLOW_SFTP_KNOWN_HOSTS`` (default
    ``~/.ssh/known_hosts``); login by ``STOCKFLOW_SFTP_PASSWORD`` or a key file
    (``?key_file=`` in the URL, else ``STOCKFLOW_SFTP_KEY_FILE``)."""
    try:
        target = parse_sftp_url(supplier.edi_folder)
    except ValueError as exc:
        raise SendError(f"supplier {supplier.id}: {exc}", retryable=False) from None
    key_file = target.key_file or settings.sftp_key_file
    password = settings.sftp_password.reveal()
    if not key_file and not password:
        raise SendError(
            f"{target}: set STOCKFLOW_SFTP_PASSWORD or a key file (STOCKFLOW_SFTP_KEY_FILE, "
            "?key_file=) to log in",
            retryable=False,
        )
    options: dict[str, Any] = {
        "username": target.user,
        "password": password or None,
        # only the configured key: never the agent's or ~/.ssh's keys
        "client_keys": [key_file] if key_file else None,
        "agent_path": None,
        "connect_timeout": settings.send_timeout_s,
    }
    if settings.sftp_known_hosts:
        options["known_hosts"] = settings.sftp_known_hosts
    final = f"{target.path.rstrip('/')}/{name}"
    tmp = f"{target.path.rstrip('/')}/.{name}.part"
    try:
        async with asyncio.timeout(settings.send_timeout_s * 2):
            async with (
                asyncssh.connect(target.host, target.port, **options) as conn,
                conn.start_sftp_client() as sftp,
            ):
                async with sftp.open(tmp, "wb") as remote:
                    await remote.write(content)
                try:
                    await sftp.rename(tmp, final, flags=asyncssh.FXR_OVERWRITE)
                except asyncssh.SFTPOpUnsupported:
                    await sftp.rename(tmp, final)
    except asyncssh.PermissionDenied:
        raise SendError(
            f"{target} refused the login of {target.user!r}; check STOCKFLOW_SFTP_PASSWORD or "
            "the key file",
            retryable=False,
        ) from None
    except asyncssh.HostKeyNotVerifiable as exc:
        known = settings.sftp_known_hosts or "~/.ssh/known_hosts"
        raise SendError(
            f"{target}: the server's host key is not trusted ({exc.reason}); add it to {known} "
            "(STOCKFLOW_SFTP_KNOWN_HOSTS)",
            retryable=False,
        ) from None
    except asyncssh.SFTPError as exc:
        raise SendError(
            f"{target}: the server refused writing {name} ({exc.reason}); check the folder and "
            "its permissions",
            retryable=False,
        ) from None
    except asyncssh.KeyImportError as exc:
        raise SendError(f"{target}: the key file cannot be read ({exc})", retryable=False) from None
    except (asyncssh.Error, OSError, TimeoutError) as exc:
        raise SendError(
            f"{target} could not be reached or dropped the connection "
            f"({type(exc).__name__}: {exc}); will retry",
            retryable=True,
        ) from None


# ---------------------------------------------------------------------------- webhook


def signature(secret: str, body: bytes) -> str:
    """The value of ``X-Stockflow-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the
    body under the shared secret. A receiver recomputes it over the raw body it got and
    compares with ``hmac.compare_digest``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _url_for_messages(url: str) -> str:
    parts = urlsplit(url)  # no query (it may carry a token), no user info
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return f"{parts.scheme}://{host}{parts.path}"


async def _send_webhook(
    proposal: Mapping[str, Any], supplier: Supplier, settings: Settings
) -> SendReceipt:
    if not supplier.webhook_url:
        raise SendError(
            f"supplier {supplier.id} sends by webhook but has no webhook_url", retryable=False
        )
    secret = settings.webhook_secret.reveal()
    if not secret:
        raise SendError(
            "STOCKFLOW_WEBHOOK_SECRET is not set: purchase order webhooks are always signed",
            retryable=False,
        )
    body = purchase_order_json(proposal, supplier)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, body),
        IDEMPOTENCY_HEADER: f"{po_number(proposal)}:{int(proposal.get('version', 1))}",
        "User-Agent": "stockflow-purchasing",
    }
    where = _url_for_messages(supplier.webhook_url)
    timeout = aiohttp.ClientTimeout(total=settings.send_timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(supplier.webhook_url, data=body, headers=headers) as resp,
        ):
            text = (await resp.text(errors="replace"))[:300]
            status = resp.status
            answer_id = resp.headers.get("X-Request-Id", "")
            if 200 <= status < 300 and resp.content_type == "application/json":
                try:
                    answer = await resp.json()
                except ValueError:
                    answer = None
                if isinstance(answer, dict) and answer.get("id") is not None:
                    answer_id = str(answer["id"])
    except TimeoutError:
        raise SendError(
            f"webhook {where} did not answer within {settings.send_timeout_s:g} s; will retry",
            retryable=True,
        ) from None
    except aiohttp.ClientError as exc:
        raise SendError(
            f"webhook {where} could not be reached ({type(exc).__name__}); will retry",
            retryable=True,
        ) from None
    if 200 <= status < 300:
        return SendReceipt(via="webhook", ref=answer_id or f"HTTP {status}")
    retryable = status >= 500 or status in (408, 429)
    raise SendError(
        f"webhook {where} answered {status}: {_masked(text.strip()) or '(no body)'}"
        + ("; will retry" if retryable else "; the supplier refused the order as sent"),
        retryable=retryable,
    )
