"""What is handed to a transport: one shared message plus per-reader recipients.

An edition is rendered once into an ``OutgoingMail`` whose subject and bodies may contain
placeholders (see ``digest.mail.render.PLACEHOLDERS``); each ``Recipient`` carries the values of
those placeholders and its own headers (List-Unsubscribe). SendGrid receives them as
``substitutions`` (use ``values_for``); SMTP and the outbox build each reader's message with
``build_mime``. ``OutgoingMail.fallbacks`` fills the placeholders of a recipient who has no
links of their own (a test copy), so a raw placeholder never reaches a reader.

This is where every header is written. Headers that carry a URL or an address (From, To,
List-Unsubscribe, Message-ID...) leave as plain ASCII, folded only at whitespace: the stdlib
folds at 78 columns and turns a long URL into an RFC 2047 encoded-word otherwise, which
Gmail and Yahoo cannot use for one-click unsubscribe. Text that may come from a feed or a
reader (the subject, display names) is decoded once and cleaned (``header_text``), so no
CR/LF, encoded or not, can start a header line. Domains are sent in their IDNA (ASCII)
form, so only a non-ASCII local part needs SMTPUTF8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy, default
from email.utils import format_datetime, make_msgid
from typing import Any

import idna

from digest.feeds.sanitize import strip_invisible

_CRLF = re.compile(r"[\r\n\u2028\u2029\x85]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# RFC 5322's hard limit; headers below are folded against it instead of 78 columns.
_MAX_LINE = 998
# Headers carrying a URL or an address: written as plain ASCII, never as an encoded-word.
_PLAIN_HEADERS = frozenset(
    {"from", "to", "cc", "reply-to", "sender", "message-id", "in-reply-to", "references",
     "list-id", "list-unsubscribe", "list-unsubscribe-post", "list-archive", "list-help",
     "list-post", "list-owner", "list-subscribe"}
)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 ftext)
_PLACEHOLDER = re.compile(r"\[%[a-z_]+%\]")
# Set by build_mime itself; a shared or per-reader header must not duplicate them.
_OWN_HEADERS = frozenset(
    {"subject", "from", "to", "cc", "bcc", "reply-to", "date", "message-id", "mime-version",
     "content-type", "content-transfer-encoding", "sender", "return-path"}
)


def clean_header(value: str) -> str:
    """A header value with CR/LF folded into spaces, so nothing can be injected.

    Control characters, bidi overrides and zero-width characters are dropped too: in a
    subject or a name they only serve to disguise it.
    """
    return strip_invisible(_CONTROL.sub("", _CRLF.sub(" ", value))).strip()


def header_text(value: str) -> str:
    """Free text for a header (subject, display name), decoded once and cleaned.

    The mail library decodes RFC 2047 encoded-words in any value it is given, so feed text
    holding ``=?utf-8?q?=0D=0A...?=`` would turn into a CR/LF inside the header. Here the
    text is decoded the way the library would, and cleaned, until the library has nothing
    left to decode: what the reader sees is exactly what was cleaned.
    """
    text = clean_header(value)
    for _ in range(4):
        decoded = _decoded(text)
        if decoded == text:
            return text
        text = decoded
    return text.replace("=?", "= ?")  # still nested deeper: break every encoded-word


def _decoded(text: str) -> str:
    if "=?" not in text:
        return text
    try:
        return clean_header(str(default.header_factory("subject", text)))
    except Exception:  # a value the parser cannot read: keep no encoded-word in it
        return text.replace("=?", "= ?")


def ascii_address(address: str) -> str:
    """``address`` with its domain in IDNA (ASCII) form: ``user@xn--bcher-kva.de``.

    A domain that is not valid IDNA is left as given (the provider will refuse it).
    """
    local, at, domain = clean_header(address).rpartition("@")
    if not at:
        return clean_header(address)
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            return f"{local}@{domain}"
    return f"{local}@{domain.lower()}"


def needs_smtputf8(address: str) -> bool:
    """True when ``address`` cannot travel without SMTPUTF8 (a non-ASCII local part)."""
    return not ascii_address(address).isascii()


class MailPolicy(EmailPolicy):
    """The stdlib's default policy, except that URL and address headers keep their form.

    A List-Unsubscribe URL longer than a 78-column line would otherwise be rewritten as an
    encoded-word; these headers are folded against RFC 5322's 998-character limit, at
    whitespace only, and stay ASCII.
    """

    def fold(self, name: str, value: Any) -> str:
        return str(EmailPolicy.fold(self._for(name, value), name, value))

    def fold_binary(self, name: str, value: Any) -> bytes:
        return bytes(EmailPolicy.fold_binary(self._for(name, value), name, value))

    def _for(self, name: str, value: Any) -> EmailPolicy:
        if name.lower() in _PLAIN_HEADERS and str(value).isascii():
            return self.clone(max_line_length=_MAX_LINE)
        return self


MAIL_POLICY = MailPolicy()


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
    sender, to = ascii_address(mail.from_email), ascii_address(recipient.email)
    # A non-ASCII local part can only travel as UTF-8 (RFC 6532), never as an encoded-word.
    international = not (sender.isascii() and to.isascii())
    msg = EmailMessage(policy=MAIL_POLICY.clone(utf8=True) if international else MAIL_POLICY)
    values = values_for(mail, recipient)
    msg["Subject"] = header_text(personalize(mail.subject, values))
    msg["From"] = Address(display_name=header_text(mail.from_name), addr_spec=sender)
    name = header_text(recipient.name or "")
    msg["To"] = Address(display_name=name, addr_spec=to) if name else to
    if mail.reply_to:
        msg["Reply-To"] = ascii_address(mail.reply_to)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=ascii_address(f"x@{domain}").rpartition("@")[2])
    msg["MIME-Version"] = "1.0"
    for name, value in reader_headers(mail, recipient).items():
        msg[name] = value
    msg.set_content(personalize(mail.text, values), subtype="plain", charset="utf-8",
                    cte="quoted-printable")
    msg.add_alternative(personalize(mail.html, values), subtype="html", charset="utf-8",
                        cte="quoted-printable")
    return msg
