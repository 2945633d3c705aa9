"""The composition root: settings -> engine, sessions, tokens, transport, dispatcher.

The CLI, the web app, the Celery worker and the tests all get their dependencies from
``build()``; tests pass overrides (another database, a MemoryTransport).
"""

from __future__ import annotations

from collections.abc import Callable

from digest.config import SEND_TIMEOUT, Settings, load_settings
from digest.delivery.dispatch import CeleryDispatch
from digest.errors import ConfigError
from digest.mail.transports.base import Transport
from digest.runtime import App, Dispatch
from digest.store.sessions import make_engine, make_session_factory
from digest.tokens import Tokens


def _sendgrid_key(settings: Settings) -> str:
    key = settings.sendgrid_api_key
    if key is None or not key.get_secret_value().strip():
        raise ConfigError(
            "SENDGRID_API_KEY is not set, but DIGEST_MAIL_BACKEND=sendgrid needs it: set it to "
            "a SendGrid API key with Mail Send permission, or choose another DIGEST_MAIL_BACKEND"
        )
    return key.get_secret_value()


def check_can_send(settings: Settings) -> None:
    """Refuse settings that cannot send mail, naming the setting to fix.

    ``digest serve`` and the worker call this before starting: otherwise every sign-up is a
    500 and every batch a traceback, and nobody is told why. It opens no connection.
    """
    sender = settings.from_email
    if "@" not in sender.strip("@") or any(c.isspace() for c in sender):
        raise ConfigError(f"DIGEST_FROM_EMAIL: {settings.from_email!r} is not an email address")
    if settings.mail_backend == "sendgrid":
        _sendgrid_key(settings)
    elif settings.mail_backend == "smtp":
        from digest.mail.transports.smtp import parse_smtp_url

        try:
            parse_smtp_url(settings.smtp_url)
        except ValueError as exc:  # a port that is not a number
            raise ConfigError(f"DIGEST_SMTP_URL: {exc}") from exc
    elif settings.mail_backend == "outbox":
        try:
            settings.outbox_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"DIGEST_OUTBOX_DIR: cannot create {settings.outbox_dir}: {exc.strerror}"
            ) from exc
    else:
        make_transport(settings)  # names an unknown DIGEST_MAIL_BACKEND


def make_transport(settings: Settings) -> Transport:
    """The transport named by DIGEST_MAIL_BACKEND."""
    if settings.mail_backend == "outbox":
        from digest.mail.transports.outbox import OutboxTransport

        return OutboxTransport(settings.outbox_dir, settings.sending_domain)
    if settings.mail_backend == "smtp":
        from digest.mail.transports.smtp import SmtpTransport

        return SmtpTransport.from_url(settings.smtp_url, timeout=SEND_TIMEOUT)
    if settings.mail_backend == "sendgrid":
        from digest.mail.transports.sendgrid import SendGridTransport

        return SendGridTransport(
            api_key=_sendgrid_key(settings),
            host=settings.sendgrid_host,
            timeout=SEND_TIMEOUT,
        )
    raise ConfigError(f"DIGEST_MAIL_BACKEND: unknown backend {settings.mail_backend!r}")


def build(
    settings: Settings | None = None,
    transport_factory: Callable[[], Transport] | None = None,
    *,
    dispatch: Dispatch | None = None,
    sleep: Callable[[float], None] | None = None,
) -> App:
    """The App for ``settings``; tests replace the transport, the dispatcher or the sleep."""
    settings = settings or load_settings()
    engine = make_engine(settings.database_url)
    app = App(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        tokens=Tokens(
            settings.secret_key.get_secret_value(), settings.confirm_max_age_hours * 3600
        ),
        transport_factory=transport_factory or (lambda: make_transport(settings)),
        dispatch=dispatch or CeleryDispatch(settings.broker_url),
    )
    if sleep is not None:
        app.sleep = sleep
    return app
