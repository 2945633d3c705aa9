"""Reading a subscriber CSV's columns: which header is the address, the name, the consent
record (Mailchimp, Jetpack/WordPress.com or our own export), and how their dates and IPs read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from digest.errors import SubscriberError

EMAIL_HEADERS = ("email", "email address", "e-mail", "e-mail address", "email_address",
                  "subscriber email", "subscriber", "user_email", "emailaddress", "mail")


_NAME_HEADERS = ("name", "full name", "display name", "display_name", "fullname")


_FIRST_HEADERS = ("first name", "first_name", "firstname", "fname")


_LAST_HEADERS = ("last name", "last_name", "lastname", "lname")


_OPTIN_HEADERS = ("optin_time", "optin time", "consent_at",
                  "date_subscribed", "date subscribed", "subscribed", "subscribed on",
                  "subscribed_on", "subscribed at", "subscribed_at", "subscription date",
                  "subscription_date", "subscribe date")


_OPTIN_IP_HEADERS = ("optin_ip", "optin ip", "consent_ip")


_CONFIRM_HEADERS = ("confirm_time", "confirm time", "confirmed_at")


_CONFIRM_IP_HEADERS = ("confirm_ip", "confirm ip")


_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y")


STATUS_HEADERS = ("status", "subscription status", "member status", "subscriber status",
                   "email subscription", "email_subscription")


@dataclass(frozen=True)
class Columns:
    email: int
    name: int | None = None
    first: int | None = None
    last: int | None = None
    status: int | None = None
    optin: int | None = None
    optin_ip: int | None = None
    confirm: int | None = None
    confirm_ip: int | None = None


def find_header(header: list[str], names: Iterable[str]) -> int | None:
    wanted = set(names)
    for index, cell in enumerate(header):
        if cell.lstrip("\ufeff").strip().strip('"').strip().lower() in wanted:
            return index
    return None


def find_columns(first_row: list[str], label: str) -> Columns | None:
    """Columns named in a header row, or None if the first row is data (no header).

    Raises SubscriberError for a header row that names no email column.
    """
    email = find_header(first_row, EMAIL_HEADERS)
    if email is None:
        if "@" in cell_at(first_row, 0):
            return None  # a bare list of addresses: the first row is an address
        cells = [cell.lstrip("\ufeff").strip()[:60] for cell in first_row[:20]]
        shown = ", ".join(cells) + (", ..." if len(first_row) > 20 else "")
        raise SubscriberError(
            f"{label}: no email column found: expected one of {', '.join(EMAIL_HEADERS)}; "
            f"the header row was: {shown}")
    found = [find_header(first_row, names) for names in (
        _NAME_HEADERS, _FIRST_HEADERS, _LAST_HEADERS, STATUS_HEADERS, _OPTIN_HEADERS,
        _OPTIN_IP_HEADERS, _CONFIRM_HEADERS, _CONFIRM_IP_HEADERS)]
    return Columns(email, *found)


def cell_at(row: list[str], index: int | None) -> str:
    if index is None or index >= len(row):
        return ""
    return unneutralised(row[index].strip())


def row_name(row: list[str], cols: Columns) -> str | None:
    name = cell_at(row, cols.name) or " ".join(
        part for part in (cell_at(row, cols.first), cell_at(row, cols.last)) if part)
    return name[:200] or None


def read_date(text: str, now: datetime) -> datetime | None:
    """A date from the file as aware UTC, or None if empty, unreadable or after ``now``."""
    text = text.strip()
    if not text:
        return None
    value: datetime | None = None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if value is None:
        return None
    try:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return value if value <= now else None


def read_ip(text: str) -> str | None:
    """An IP address from the file in canonical form, or None if empty or not an address."""
    try:
        return str(ipaddress.ip_address(text.strip()))[:64]
    except ValueError:
        return None


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP "CSV injection"); a reader's name or address must never run on the operator's machine.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def unneutralised(text: str) -> str:
    """A cell as it was before the export quoted it, so an export imports unchanged."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text
