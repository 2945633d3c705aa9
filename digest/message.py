"""What is handed to a transport: one shared message plus per-reader recipients.

An edition is rendered once into an ``OutgoingMail`` whose subject and bodies may contain
placeholders (see ``digest.render.PLACEHOLDERS``); each ``Recipient`` carries the values of
those placeholders and its own headers (List-Unsubscribe). SendGrid receives them as
``substitutions``; SMTP and the outbox substitute with ``personalize``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import UTC, datetime

_CRLF = re.compile(r"[\r\n]+")


def clean_header(value: str) -> str:
    """A header value with CR/LF folded into spaces, so nothing can be injected."""
    return _CRLF.sub(" ", value).strip()


def personalize(template: str, values: Mapping[str, str]) -> str:
    """Replace each placeholder key in ``template`` by its value (plain str.replace)."""
    for key, value in values.items():
        template = template.replace(key, value)
    return template


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None = None
    subscriber_id: int | None = None
    substitutions: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutgoingMail:
    subject: str
    html: str
    text: str
    from_email: str
    from_name: str
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # shared by all recipients
    custom_args: Mapping[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


def build_mime(mail: OutgoingMail, recipient: Recipient, domain: str) -> EmailMessage:
    """One standard message for one reader: multipart/alternative, text part first."""
    msg = EmailMessage()
    values = recipient.substitutions
    msg["Subject"] = clean_header(personalize(mail.subject, values))
    msg["From"] = Address(display_name=clean_header(mail.from_name),
                          addr_spec=clean_header(mail.from_email))
    if recipient.name:
        msg["To"] = Address(display_name=clean_header(recipient.name),
                            addr_spec=clean_header(recipient.email))
    else:
        msg["To"] = clean_header(recipient.email)
    if mail.reply_to:
        msg["Reply-To"] = clean_header(mail.reply_to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["MIME-Version"] = "1.0"
    for name, value in {**mail.headers, **recipient.headers}.items():
        msg[name] = clean_header(personalize(value, values))
    msg.set_content(personalize(mail.text, values), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    msg.add_alternative(personalize(mail.html, values), subtype="html", charset="utf-8",
                        cte="quoted-printable")
    return msg
