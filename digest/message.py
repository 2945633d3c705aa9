"""What is handed to a transport: one shared message plus per-reader recipients.

An edition is rendered once into an ``OutgoingMail`` whose subject and bodies may contain
placeholders (see ``digest.render.PLACEHOLDERS``); each ``Recipient`` carries the values of
those placeholders and its own headers (List-Unsubscribe). SendGrid receives them as
``substitutions`` (use ``values_for``); SMTP and the outbox build each reader's message with
``build_mime``. ``OutgoingMail.fallbacks`` fills the placeholders of a recipient who has no
links of their own (a test copy), so a raw placeholder never reaches a reader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

_CRLF = re.compile(r"[\r\n]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 ftext)
_PLACEHOLDER = re.compile(r"\[%[a-z_]+%\]")
# Set by build_mime itself; a shared or per-reader header must not duplicate them.
_OWN_HEADERS = frozenset(
    {"subject", "from", "to", "cc", "bcc", "reply-to", "date", "message-id", "mime-version",
     "content-type", "content-transfer-encoding", "sender", "return-path"}
)


def clean_header(value: str) -> str:
    """A header value with CR/LF folded into spaces, so nothing can be injected."""
    return _CONTROL.sub("", _CRLF.sub(" ", value)).strip()


def personalize(template: str, values: Mapping[str, str]) -> str:
    """Replace each placeholder key in ``template`` by its value (plain str.replace)."""
    for key, value in values.items():
        template = template.replace(key, value)
    return template


def has_placeholder(value: str) -> bool:
    """True if ``value`` still holds a ``[%name%]`` placeholder."""
    return _PLACEHOLDER.search(value) is not None


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
    # Placeholder values for a recipient without their own (generic, token-free links).
    fallbacks: Mapping[str, str] = field(default_factory=dict)


def values_for(mail: OutgoingMail, recipient: Recipient) -> dict[str, str]:
    """The placeholder values for one reader: their own, else the mail's fallbacks."""
    return {**mail.fallbacks, **recipient.substitutions}


def reader_headers(mail: OutgoingMail, recipient: Recipient) -> dict[str, str]:
    """Extra headers for one reader, personalized and cleaned.

    A header that still holds a placeholder is dropped (List-Unsubscribe-Post goes with
    List-Unsubscribe), and headers that ``build_mime`` sets itself cannot be overridden.
    """
    values = values_for(mail, recipient)
    merged = {**mail.headers, **recipient.headers}
    headers: dict[str, str] = {}
    for name, raw in merged.items():
        name = name.strip()
        if not _HEADER_NAME.match(name) or name.lower() in _OWN_HEADERS:
            continue
        value = clean_header(personalize(raw, values))
        if value and not has_placeholder(value):
            headers[name] = value
    if "List-Unsubscribe" not in headers:
        headers.pop("List-Unsubscribe-Post", None)
    return headers


def build_mime(
    mail: OutgoingMail,
    recipient: Recipient,
    domain: str,
    *,
    now: datetime | None = None,
) -> EmailMessage:
    """One standard message for one reader: multipart/alternative, text part first.

    Carries From (with display name), To, optional Reply-To, Date, a Message-ID on
    ``domain``, the shared headers (List-Id) and the reader's own (List-Unsubscribe).
    """
    msg = EmailMessage()
    values = values_for(mail, recipient)
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
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=clean_header(domain))
    msg["MIME-Version"] = "1.0"
    for name, value in reader_headers(mail, recipient).items():
        msg[name] = value
    msg.set_content(personalize(mail.text, values), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    msg.add_alternative(personalize(mail.html, values), subtype="html", charset="utf-8",
                        cte="quoted-printable")
    return msg
