"""SMTP: one connection per batch, every reader's own message sent through it.

``SMTP_URL`` chooses the security and the login: ``smtp://host:25`` (plain),
``smtp+starttls://user:pass@host:587`` (STARTTLS, required) or ``smtps://user:pass@host:465``
(implicit TLS). Errors are mapped at this boundary: 4xx replies, timeouts and dropped
connections are transient; 5xx replies and failed logins are permanent. A reader refused with
a 5xx (at RCPT, or at DATA: a full mailbox) is reported and the others still go out; a
failure mid-batch says how many readers were already accepted (``BatchInterrupted`` when
transient, ``BatchStopped`` when permanent), so they are recorded and not mailed twice.

Addresses travel with their domain in IDNA (ASCII) form, so SMTPUTF8 is asked for only when
a local part is not ASCII; a server without SMTPUTF8 refuses that reader alone.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from digest.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from digest.logs import mask_addresses
from digest.mail.message import OutgoingMail, Recipient, build_mime, needs_smtputf8
from digest.mail.transports.base import BatchInterrupted, BatchStopped, Refusals
from digest.mail.transports.metered import provider_call

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect, parsed from SMTP_URL."""

    host: str
    port: int
    security: str  # "plain" | "starttls" | "ssl"
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return (f"SmtpConfig(host={self.host!r}, port={self.port}, security={self.security!r}, "
                f"username={self.username!r}, password={'***' if self.password else None})")


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://`` URLs (ConfigError if bad)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(
            f"DIGEST_SMTP_URL: expected smtp://, smtp+starttls:// or smtps://host[:port], "
            f"got {parts.scheme}://{parts.hostname or ''}"
        )
    security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "ssl"}[scheme]
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[scheme],
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _mapped(exc: Exception) -> TransientDeliveryError | PermanentDeliveryError:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return PermanentDeliveryError(f"SMTP login failed: {exc.smtp_code} {exc.smtp_error!r}",
                                      exc.smtp_code)
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        reply = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        text = f"SMTP {exc.smtp_code}: {reply}"
        if 400 <= exc.smtp_code < 500:
            return TransientDeliveryError(text, exc.smtp_code)
        return PermanentDeliveryError(text, exc.smtp_code)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"SMTP server does not support this: {exc}")
    return TransientDeliveryError(f"SMTP connection failed: {exc!r}")


def _interrupted(error: TransientDeliveryError | PermanentDeliveryError, done: int,
                 total: int, refused: Sequence[str] = ()
                 ) -> TransientDeliveryError | PermanentDeliveryError:
    """Say how far the batch got, so a retry resumes after the readers already accepted."""
    if isinstance(error, PermanentDeliveryError):
        return BatchStopped(f"{error} (after {done} of {total} readers)", error.status,
                            accepted=done, refused=refused)
    if not done:
        return error
    return BatchInterrupted(str(error), error.status, error.retry_after, accepted=done,
                            refused=refused)


class SmtpTransport:
    """Opens one SMTP connection per batch and sends each reader's message through it."""

    # One message at a time: small batches keep the ledger's resume point close, so a
    # worker killed mid-batch (time limit, SIGKILL) resends at most this many readers.
    max_batch = 100

    def __init__(self, config: SmtpConfig, timeout: float = 30.0,
                 domain: str = "localhost") -> None:
        self.config = config
        self.timeout = timeout
        self.domain = domain

    @classmethod
    def from_url(cls, url: str, timeout: float = 30.0) -> SmtpTransport:
        """A transport for ``SMTP_URL``."""
        return cls(parse_smtp_url(url), timeout=timeout)

    def __repr__(self) -> str:
        return f"SmtpTransport({self.config!r}, timeout={self.timeout})"

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        conn: smtplib.SMTP
        if cfg.security == "ssl":
            conn = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=self.timeout,
                                    context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)
        try:
            if cfg.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def send_batch(self, mail: OutgoingMail, recipients: Sequence[Recipient]) -> Refusals:
        """Send every reader's message over one connection; returns the refused readers."""
        if not recipients:
            return []
        with provider_call("smtp"):
            return self._session(mail, recipients)

    def _session(self, mail: OutgoingMail, recipients: Sequence[Recipient]) -> Refusals:
        domain = mail.from_email.rpartition("@")[2] or self.domain
        try:
            conn = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise _mapped(exc) from exc
        refused: list[str] = []
        try:
            for done, recipient in enumerate(recipients):
                try:
                    self._send_one(conn, mail, recipient, domain, refused)
                except (smtplib.SMTPException, OSError) as exc:
                    raise _interrupted(_mapped(exc), done, len(recipients), refused) from exc
                except Exception as exc:  # a time limit, a bug: still say how far we got
                    error = TransientDeliveryError(f"SMTP batch interrupted: {exc!r}")
                    raise _interrupted(error, done, len(recipients), refused) from exc
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
        return refused

    @staticmethod
    def _send_one(conn: smtplib.SMTP, mail: OutgoingMail, recipient: Recipient, domain: str,
                  refused: list[str]) -> None:
        """One reader; a permanent refusal of this reader alone (5xx at RCPT, or at DATA as
        for a full mailbox) is noted, not raised: the session goes on with the next reader."""
        message = build_mime(mail, recipient, domain)
        if needs_smtputf8(recipient.email) or needs_smtputf8(mail.from_email):
            conn.ehlo_or_helo_if_needed()
            if not conn.has_extn("smtputf8"):
                log.warning("SMTP refused reader %s: no SMTPUTF8", recipient.subscriber_id,
                            extra={"subscriber_id": recipient.subscriber_id})
                refused.append(f"{recipient.email}: the SMTP server does not support SMTPUTF8, "
                               "which this address needs (its local part is not ASCII)")
                return
        try:
            conn.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b""))
        except smtplib.SMTPDataError as exc:  # smtplib has reset the session (RSET)
            code, data_reply = exc.smtp_code, exc.smtp_error
            reply = data_reply if isinstance(data_reply, bytes) else str(data_reply).encode()
        else:
            return
        if 400 <= code < 500:  # try this reader again later, with the rest after them
            raise smtplib.SMTPResponseException(code, reply)
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        log.warning("SMTP refused reader %s: %s %s", recipient.subscriber_id, code,
                    mask_addresses(text), extra={"subscriber_id": recipient.subscriber_id})
        refused.append(f"{recipient.email}: SMTP {code} {text}")

    def close(self) -> None:
        """Nothing to release between batches."""
