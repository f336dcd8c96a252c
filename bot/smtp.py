"""Sending an e-mail digest (the SMTP edge): the message ``bot/kinds/email.py``
built and the outbox kept, with From, To and Date added at send time.

The standard library's ``smtplib``, in a thread, within the delivery
deadline: implicit TLS or STARTTLS (certificates verified, against
``ca_file`` if given), then AUTH when a username is configured.  A 4xx
reply and a dropped connection are retried (``DeliveryError``); a 5xx, a
refused login or a server without the STARTTLS/AUTH asked for are not.  A
message accepted for some recipients and refused for others is delivered
(sending it again would give the others a second copy): the refusals are
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any

from bot.errors import DeliveryError
from bot.kinds.email import PORTS

if TYPE_CHECKING:
    from bot.config import Webhook
    from bot.state.records import OutMessage

log = logging.getLogger("feedbot.deliver")


# A session that outlived its deadline still runs in its thread (a thread
# cannot be stopped): no second session for that webhook until it ends, or
# the message could be sent twice.
_running: dict[str, asyncio.Future[None]] = {}


async def send(webhook: Webhook, msg: OutMessage, now: datetime, deadline: float) -> None:
    earlier = _running.get(webhook.ident)
    if earlier is not None and not earlier.done():
        raise DeliveryError("the previous SMTP session has not ended yet")
    mail = BytesParser(policy=policy.SMTP).parsebytes(msg.body)
    assert isinstance(mail, EmailMessage)
    for header in ("From", "To", "Date"):
        del mail[header]
    mail["From"] = webhook.options["from"]
    mail["To"] = ", ".join(webhook.options["to"])
    mail["Date"] = format_datetime(now)
    session = asyncio.get_running_loop().run_in_executor(None, _send, webhook, mail, deadline)
    _running[webhook.ident] = session
    try:
        await asyncio.wait_for(asyncio.shield(session), deadline)
    except TimeoutError:
        raise DeliveryError(f"no complete SMTP exchange within {deadline:g}s") from None


def _send(webhook: Webhook, mail: EmailMessage, timeout: float) -> None:
    o = webhook.options
    security = o["security"]
    port = o["port"] or PORTS[security]
    sender = parseaddr(o["from"])[1]
    recipients = [parseaddr(x)[1] for x in o["to"]]
    smtp: smtplib.SMTP | None = None
    try:
        context = ssl.create_default_context(cafile=o["ca_file"])
        if security == "tls":
            smtp = smtplib.SMTP_SSL(o["host"], port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(o["host"], port, timeout=timeout)
        if security == "starttls":
            smtp.starttls(context=context)
        if o["username"] is not None:
            smtp.login(o["username"], webhook.token.reveal() if webhook.token is not None else "")
        refused = smtp.send_message(mail, sender, recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"every recipient refused ({_codes(exc.recipients)})", retryable=False) from None
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc)
        raise DeliveryError(
            f"SMTP {exc.smtp_code} {' '.join(said.split())[:120]}", exc.smtp_code, retryable=exc.smtp_code < 500
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError("the server does not offer STARTTLS or AUTH as configured", retryable=False) from None
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(
            f"the server's certificate is not trusted ({exc.verify_message})", retryable=False
        ) from None
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
        raise DeliveryError(f"SMTP failed ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from None
    finally:
        # Accepted is accepted: a QUIT that fails afterwards must not make
        # the message look unsent (and be sent again).
        if smtp is not None:
            with contextlib.suppress(Exception):
                smtp.quit()
            smtp.close()
    if refused:
        log.warning("webhook=%s recipients refused: %s", webhook.name, _codes(refused))


def _codes(recipients: dict[str, Any]) -> str:
    return ", ".join(f"{addr}: {code[0] if isinstance(code, tuple) else code}" for addr, code in recipients.items())
