"""E-mail: one message per digest over SMTP (``host``, ``port``,
``security`` = "starttls" | "tls" | "none", ``username`` and a
``password``, ``from``, ``to``).  This module builds the message (pure);
``bot/smtp.py`` sends it.

The message has a ``text/plain`` part in the house format and a
``text/html`` part that reads the same in a mail client (topics as
headings, headlines as links); the ``Subject`` comes from a template with
the digest's date; the ``Message-ID`` is the same for every try of one
digest to one destination, so a message sent again after a crash is one
that mail systems recognise.  Japanese subjects and bodies are UTF-8
(RFC 2047 words in the subject).
"""

from __future__ import annotations

import hashlib
import html
import re
import ssl
from collections.abc import Mapping
from datetime import tzinfo
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, ClassVar

from bot.kinds.base import Kind, Message, Option, a_string, an_int, choice, health_report, loopback
from bot.models import Rendered

if TYPE_CHECKING:
    from bot.config.webhooks import Webhook
    from bot.secrets import Secret

RFC822 = "message/rfc822"
DEFAULT_SUBJECT = "ニュースダイジェスト {date}"
PORTS = {"starttls": 587, "tls": 465, "none": 25}
_URL = re.compile(r"https?://[^\s<>\"]+")


def address(v: Any) -> str:
    s = a_string(v)
    _name, addr = parseaddr(s)
    if "@" not in addr or addr.startswith("@") or addr.endswith("@") or " " in addr:
        raise ValueError(f"{s!r} is not an e-mail address")
    return s


def addresses(v: Any) -> tuple[str, ...]:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items:
        raise TypeError("must be an address or a non-empty list of addresses")
    return tuple(address(x) for x in items)


def subject_template(v: Any) -> str:
    s = a_string(v)
    try:
        s.format(date="2025-01-21")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"{s!r}: only {{date}} may be used ({exc})") from None
    return s


def ca_file(v: Any) -> str:
    """A PEM file of CA certificates, checked by loading it (``ssl`` reads
    only a file here: no connection)."""
    s = a_string(v)
    try:
        ssl.create_default_context(cafile=s)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{s!r} is not a readable PEM file of certificates ({exc.strerror or exc})") from None
    return s


def html_part(rendered: Rendered, report: str | None) -> str:
    """The digest as simple HTML: each group's tag line a heading, each
    headline a link to its article, the attribution small, the body as
    paragraphs.  Every feed text escaped."""
    links = {i.id: i.link for i in (*rendered.digest.lead, *(i for g in rendered.digest.groups for i in g.items))}
    out = ['<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="font-family:sans-serif">']
    for block in rendered.blocks:
        if block.tagline:
            out.append(f"<h2>{html.escape(block.tagline)}</h2>")
        head, *rest = block.lines
        link = links.get(block.item_id)
        title = _URL.sub("", head).strip() or head
        if link:
            out.append(f'<p><strong><a href="{html.escape(link, quote=True)}">{html.escape(title)}</a></strong></p>')
        else:
            out.append(f"<p><strong>{html.escape(head)}</strong></p>")
        if rest:
            out.append(f'<p style="color:#555;font-size:90%">{html.escape(rest[0])}</p>')
        out.extend(f"<p>{html.escape(line)}</p>" for line in rest[1:])
    if report:
        out.append("<hr>" + "".join(f"<p>{html.escape(line)}</p>" for line in report.split("\n")))
    out.append("</body></html>")
    return "\n".join(out)


class Email(Kind):
    transport = "smtp"  # sent by bot/smtp.py
    name = "email"
    url = None
    url_is_secret = False
    secret = "password"
    secret_required = False
    options: ClassVar[dict[str, Option]] = {
        "host": Option(a_string),
        "port": Option(an_int(1, 65535), None),
        "security": Option(choice("starttls", "tls", "none"), "starttls"),
        "username": Option(a_string, None),
        "from": Option(address),
        "to": Option(addresses),
        "subject": Option(subject_template, DEFAULT_SUBJECT),
        "ca_file": Option(ca_file, None),
    }

    def check(self, options: Mapping[str, Any], token: Secret | None, url: str) -> tuple[str, str] | None:
        if (options["username"] is None) != (token is None):
            return "username", "give username and password (or password_file) together, or neither"
        if options["security"] == "none" and options["username"] is not None and not loopback(options["host"]):
            return "security", '"none" would send the password unencrypted: use "starttls" or "tls"'
        return None

    def address(self, options: Mapping[str, Any]) -> str:
        return f"smtp://{options['host']}:{options['port'] or PORTS[options['security']]}"

    def build(
        self, rendered: Rendered, digest_id: int, zone: tzinfo, webhook: Webhook | None = None, limit: int | None = None
    ) -> list[Message]:
        report = health_report(rendered, zone, 20_000, lambda line, _links: line)
        text = rendered.text + (f"\n\n{report}" if report else "")
        msg = EmailMessage(policy=policy.SMTP)
        subject = webhook.options["subject"] if webhook is not None else DEFAULT_SUBJECT
        msg["Subject"] = subject.format(date=rendered.digest.date)
        ident = webhook.ident if webhook is not None else "email"
        domain = parseaddr(webhook.options["from"])[1].rpartition("@")[2] if webhook is not None else "feedbot"
        # The digest's text is in it: a digest numbered again after a state
        # reset is a new message, not a duplicate mail systems drop.
        unique = hashlib.sha256(f"{ident}\n{text}".encode()).hexdigest()[:16]
        msg["Message-ID"] = f"<feedbot.{digest_id}.{unique}@{domain}>"
        msg.set_content(text, charset="utf-8")
        msg.add_alternative(html_part(rendered, report), subtype="html", charset="utf-8")
        return [Message(msg.as_bytes(), RFC822, text)]


KIND = Email()
