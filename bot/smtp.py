"""Sending an e-mail digest (the SMTP edge): the message ``bot/kinds/email.py``
built and the outbox kept, with From, To and Date added at send time.

aiosmtplib, on the event loop: implicit TLS or STARTTLS (certificates
verified, against ``ca_file`` if given), then AUTH when a username is
configured.  The whole session, from the connection to the end of DATA, is
bounded by the delivery deadline (``digest.delivery_timeout``, counted in
time the process ran): a server that stops answering, at AUTH or anywhere,
costs that much and one log line; the connection is closed when it expires.

The body goes out as the outbox holds it (UTF-8, ``8bit``) with
``BODY=8BITMIME`` where the server offers 8BITMIME (RFC 6152); where it does
not, its text parts are re-encoded (base64) so that only 7-bit data is
sent.  A server's words (its replies, its refusals) are shown with their
control characters escaped: an ESC or a BEL in a reply reaches no terminal.

Failures are ``DeliveryError`` with whose fault a refusal is: a 4xx and a
dropped connection are retried; the server refusing the message itself
(5xx at DATA: too large, content refused) sets that message aside; a
refused login, sender or every recipient, a certificate not trusted or a
server without the STARTTLS/AUTH asked for hold the webhook.  A message
accepted for some recipients and refused for others is delivered (sending
it again would give the others a second copy): the refusals are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING

import aiosmtplib

from bot import pause
from bot.errors import DeliveryError, Refused
from bot.kinds.email import PORTS
from bot.text import shown

if TYPE_CHECKING:
    from bot.config.webhooks import Webhook
    from bot.state.records import OutMessage

log = logging.getLogger("feedbot.deliver")

QUIT_SECONDS = 5.0  # for the server's goodbye after it accepted the message (not waited for beyond)


async def send(webhook: Webhook, msg: OutMessage, now: datetime, deadline: float) -> None:
    mail = BytesParser(policy=policy.SMTP).parsebytes(msg.body)
    assert isinstance(mail, EmailMessage)
    for header in ("From", "To", "Date"):
        del mail[header]
    mail["From"] = webhook.options["from"]
    mail["To"] = ", ".join(webhook.options["to"])
    mail["Date"] = format_datetime(now)
    o = webhook.options
    security = o["security"]
    context = ssl.create_default_context(cafile=o["ca_file"])
    client = aiosmtplib.SMTP(
        hostname=o["host"],
        port=o["port"] or PORTS[security],
        use_tls=security == "tls",
        start_tls=security == "starttls",  # required where asked for, never tried otherwise
        tls_context=context,
        timeout=deadline,
    )
    sending = False  # MAIL FROM was sent: from here, a lost answer may hide an accepted message
    try:
        try:
            async with pause.deadline(deadline):
                await client.connect()
                if o["username"] is not None:
                    await client.login(o["username"], webhook.token.reveal() if webhook.token is not None else "")
                sending = True
                refused, _ = await client.send_message(
                    mail, sender=parseaddr(o["from"])[1], recipients=[parseaddr(x)[1] for x in o["to"]]
                )
        except TimeoutError:  # the deadline, or one of aiosmtplib's own
            raise DeliveryError(
                f"no complete SMTP exchange within {deadline:g}s", maybe_sent=sending, timed_out=True
            ) from None
        except aiosmtplib.SMTPException as exc:
            raise _failure(exc, sending) from None
        except ssl.SSLCertVerificationError as exc:
            raise _failure(aiosmtplib.SMTPException(str(exc)), sending, exc) from None
        except OSError as exc:  # ssl.SSLError is one
            raise DeliveryError(f"SMTP failed ({type(exc).__name__}: {shown(str(exc), 120)})") from None
        if refused:
            codes = ", ".join(f"{shown(addr, 80)}: {r.code}" for addr, r in refused.items())
            log.warning("webhook=%s recipients refused: %s", webhook.name, codes)
        # Accepted is accepted: a goodbye that fails or never comes must not
        # make the message look unsent (and be sent again).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.quit(), QUIT_SECONDS)
    finally:
        client.close()


def _failure(exc: aiosmtplib.SMTPException, sending: bool, cause: BaseException | None = None) -> DeliveryError:
    """One sentence for the log and ``status``, and whose fault it is."""
    cause = cause or exc
    while cause is not None:  # aiosmtplib wraps the handshake's errors
        if isinstance(cause, ssl.SSLCertVerificationError):
            return DeliveryError(
                f"the server's certificate is not trusted ({cause.verify_message})", retryable=False, refused="webhook"
            )
        cause = cause.__cause__
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        said = ", ".join(f"{shown(r.recipient, 80)}: {r.code} {shown(r.message, 80)}" for r in exc.recipients)
        retry = any(code < 500 for code in codes)
        return DeliveryError(f"every recipient refused ({said})", retryable=retry, refused=None if retry else "webhook")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        said = f"SMTP {exc.code} {shown(' '.join(exc.message.split()), 160)}"
        if exc.code < 500:
            return DeliveryError(said, exc.code, maybe_sent=sending and isinstance(exc, aiosmtplib.SMTPDataError))
        # The message itself refused (too large, its content) or the account,
        # sender or server (a login, MAIL FROM, the greeting).
        whose: Refused = "message" if isinstance(exc, aiosmtplib.SMTPDataError) else "webhook"
        return DeliveryError(said, exc.code, retryable=False, refused=whose)
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or "not supported" in str(exc):
        return DeliveryError(
            f"the server does not offer what is configured ({shown(str(exc), 120)})", retryable=False, refused="webhook"
        )
    # Disconnected, a connection that failed, a reply that made no sense.
    return DeliveryError(f"SMTP failed ({type(exc).__name__}: {shown(str(exc), 120)})", maybe_sent=sending)
