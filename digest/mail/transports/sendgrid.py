"""SendGrid v3 mail/send: one request carries up to 1000 readers.

Each reader is one personalization with their own ``to``, ``substitutions`` (their
unsubscribe and preferences links), ``headers`` (List-Unsubscribe) and ``custom_args``
(edition, batch and subscriber ids, read back by the Event Webhook). The spec types the
top-level ``custom_args`` as a string, so the ids travel per personalization instead.

Errors are mapped at this boundary: 429, 5xx, timeouts and connection failures become
``TransientDeliveryError`` (with the provider's ``Retry-After`` or ``X-RateLimit-Reset``); a
read timeout or a connection dropped after the request went out is ``MaybeAccepted``;
400, 401, 403, 413 and other 4xx become ``PermanentDeliveryError`` carrying the provider's text.

SendGrid splits display names on commas and semicolons (``"Smith, John"`` is delivered to the
address ``Smith`` and dropped as invalid, which the Event Webhook then reports as a bounce),
so names leave here without them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

import sendgrid
from python_http_client.exceptions import HTTPError

from digest.errors import PermanentDeliveryError, TransientDeliveryError
from digest.feeds.sanitize import neutralise_placeholders
from digest.mail.message import OutgoingMail, Recipient, ascii_address, header_text, values_for
from digest.mail.transports.base import MaybeAccepted
from digest.mail.transports.metered import provider_call

MAX_PERSONALIZATIONS = 1000
_NAME_SEPARATORS = re.compile(r"[,;]+")
_ERROR_TEXT_LIMIT = 2000


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name) or getter(name.lower())
    return str(value) if value is not None else None


def retry_after_seconds(headers: Any, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait (Retry-After or X-RateLimit-Reset), if any."""
    now = time.time() if now is None else now
    value = _header(headers, "Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = _header(headers, "X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset.strip()) - now)
        except ValueError:
            return None
    return None


def _error_text(exc: HTTPError) -> str:
    body = exc.body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    violations = _header(exc.headers, "sl-violations")
    if violations:
        text = f"{text} sl-violations: {violations}"
    return f"SendGrid {exc.status_code} {exc.reason}: {text.strip()}"[:_ERROR_TEXT_LIMIT]


def map_http_error(exc: HTTPError) -> TransientDeliveryError | PermanentDeliveryError:
    """The digest error for a SendGrid HTTP error response."""
    status = int(exc.status_code)
    text = _error_text(exc)
    if status == 429 or status >= 500 or status == 408:
        return TransientDeliveryError(text, status, retry_after_seconds(exc.headers))
    return PermanentDeliveryError(text, status)


def display_name(name: str) -> str:
    """``name`` cleaned for a header, without the commas and semicolons SendGrid would read
    as address separators, and without a placeholder opening SendGrid could fill in."""
    cleaned = neutralise_placeholders(header_text(name))
    return " ".join(_NAME_SEPARATORS.sub(" ", cleaned).split())


def personalization(mail: OutgoingMail, recipient: Recipient) -> dict[str, Any]:
    """One reader's entry in ``personalizations``: their links, else the mail's fallbacks."""
    to: dict[str, str] = {"email": ascii_address(recipient.email)}
    name = display_name(recipient.name or "")
    if name:
        to["name"] = name
    entry: dict[str, Any] = {"to": [to]}
    values = values_for(mail, recipient)
    if values:
        entry["substitutions"] = values
    if recipient.headers:
        entry["headers"] = dict(recipient.headers)
    args = dict(mail.custom_args)
    if recipient.subscriber_id is not None:
        args["subscriber_id"] = str(recipient.subscriber_id)
    if args:
        entry["custom_args"] = args
    return entry


def request_body(mail: OutgoingMail, recipients: Sequence[Recipient]) -> dict[str, Any]:
    """The JSON body of one mail/send request (text/plain before text/html)."""
    body: dict[str, Any] = {
        "personalizations": [personalization(mail, r) for r in recipients],
        "from": {"email": ascii_address(mail.from_email), "name": display_name(mail.from_name)},
        "subject": header_text(mail.subject),
        "content": [
            {"type": "text/plain", "value": mail.text},
            {"type": "text/html", "value": mail.html},
        ],
    }
    if mail.reply_to:
        body["reply_to"] = {"email": ascii_address(mail.reply_to)}
    if mail.headers:
        body["headers"] = dict(mail.headers)
    if mail.categories:
        body["categories"] = list(mail.categories)
    return body


class SendGridTransport:
    """Sends batches through ``sendgrid.SendGridAPIClient`` against ``host``."""

    max_batch = MAX_PERSONALIZATIONS

    def __init__(self, api_key: str, host: str = "https://api.sendgrid.com",
                 timeout: float = 30.0) -> None:
        self.host = host.rstrip("/")
        self.timeout = timeout
        self._client = sendgrid.SendGridAPIClient(api_key=api_key, host=self.host)

    def __repr__(self) -> str:
        return f"SendGridTransport(host={self.host!r}, timeout={self.timeout})"

    def send_batch(self, mail: OutgoingMail, recipients: Sequence[Recipient]) -> None:
        """Send one request; raises Transient/PermanentDeliveryError on failure."""
        if not recipients:
            return
        if len(recipients) > self.max_batch:
            raise PermanentDeliveryError(
                f"{len(recipients)} recipients exceed SendGrid's {self.max_batch} per request"
            )
        self.post(request_body(mail, recipients))

    def post(self, body: dict[str, Any]) -> int:
        """POST a ready body to /v3/mail/send and return the status code (200 or 202)."""
        with provider_call("sendgrid"):
            return self._post(body)

    def _post(self, body: dict[str, Any]) -> int:
        try:
            response = self._client.client.mail.send.post(
                request_body=body, timeout=self.timeout
            )
        except HTTPError as exc:
            raise map_http_error(exc) from exc
        except URLError as exc:  # urllib wraps what fails before the request is sent
            raise TransientDeliveryError(f"SendGrid unreachable: {exc.reason}") from exc
        except TimeoutError as exc:  # sent, no answer: SendGrid may have accepted it
            raise MaybeAccepted(f"SendGrid timed out after {self.timeout} s "
                                "without an answer") from exc
        except (HTTPException, ConnectionError) as exc:
            raise MaybeAccepted(f"SendGrid dropped the connection after the request: "
                                f"{exc!r}") from exc
        except Exception as exc:  # a task time limit while waiting for the answer
            raise MaybeAccepted(f"SendGrid request interrupted: {exc!r}") from exc
        status = int(response.status_code)
        if status not in (200, 202):
            raise PermanentDeliveryError(f"SendGrid answered {status} unexpectedly", status)
        return status

    def close(self) -> None:
        """Nothing to release: each request opens its own connection."""
