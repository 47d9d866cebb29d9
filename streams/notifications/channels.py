"""Sending notifications: SMTP email and webhook POSTs, with retries and backoff.

The I/O edge of notifications. Errors are :class:`SendError` with ``retryable`` (a 4xx SMTP
reply, a 5xx/408/429 HTTP answer, a refused or dropped connection are worth another attempt;
a 5xx SMTP reply or another 4xx HTTP answer are not). Error texts never carry an address, a
webhook URL (it often embeds a secret token) or a password.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiohttp

from streams.kernel.settings import Settings
from streams.notifications.config import RetryPolicy
from streams.notifications.core import backoff_delays

TIMEOUT_S = 10.0


class SendError(Exception):
    """A send that did not go through; ``retryable``: another attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _send_email_now(settings: Settings, to: str, subject: str, body: str) -> str:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="stockflow")
    message.set_content(body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.reveal())
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = sorted({code for code, _ in exc.recipients.values()})
        raise SendError(
            f"SMTP refused the recipient ({codes})", retryable=all(400 <= c < 500 for c in codes)
        ) from None
    except smtplib.SMTPResponseException as exc:
        code = exc.smtp_code
        raise SendError(f"SMTP {code}", retryable=400 <= code < 500) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"SMTP unreachable: {type(exc).__name__}", retryable=True) from None
    return str(message["Message-ID"])


async def send_email(settings: Settings, to: str, subject: str, body: str) -> str:
    """One plain-text email through the installation's SMTP relay (settings.smtp_*); returns
    its Message-ID. smtplib runs in a thread: one short connection per email."""
    return await asyncio.to_thread(_send_email_now, settings, to, subject, body)


async def send_webhook(session: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> int:
    """POST ``payload`` as JSON; any 2xx is accepted (returns the status)."""
    try:
        async with session.post(
            url, json=payload, timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)
        ) as response:
            status = response.status
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SendError(f"webhook unreachable: {type(exc).__name__}", retryable=True) from None
    if 200 <= status < 300:
        return status
    retryable = status >= 500 or status in (408, 425, 429)
    raise SendError(f"webhook answered HTTP {status}", retryable=retryable)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    attempts: int
    error: str | None  # the last error (also kept when a later attempt succeeded)


Sleep = Callable[[float], Awaitable[None]]


async def with_retries(
    send: Callable[[], Awaitable[object]], policy: RetryPolicy, *, sleep: Sleep = asyncio.sleep
) -> Outcome:
    """Attempt ``send`` up to ``policy.max_attempts`` times, waiting the backoff schedule
    between attempts; stop at the first success or at an error that is not retryable."""
    delays = backoff_delays(policy)
    error: str | None = None
    for attempt in range(1, policy.max_attempts + 1):
        try:
            await send()
        except SendError as exc:
            error = str(exc)
            if not exc.retryable or attempt == policy.max_attempts:
                return Outcome(False, attempt, error)
            await sleep(delays[attempt - 1])
        else:
            return Outcome(True, attempt, error)
    return Outcome(False, policy.max_attempts, error)
