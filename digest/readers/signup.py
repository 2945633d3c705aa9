"""The public signup door: bots and floods are turned away before ``optin.subscribe``.

Two bot checks cost a human nothing: a honeypot field hidden with CSS (people leave it empty)
and a signed time stamp put in the form when the page is served (people need more than
``min_fill_seconds`` to type an address). A bot is answered exactly like a person but nothing
is stored or sent, so it learns nothing. A correctly signed stamp that is too fresh (autofill),
stale or from the future (a skewed replica) may be a person: they are asked to press again
(``check_form``), never silently dropped. A stamp is
optional: a static form embedded in a blog sidebar cannot carry one; the rate limits still
apply to it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, Signer

from digest.config import Settings
from digest.errors import SubscriberError
from digest.readers import addresses, choices, optin
from digest.readers.ratelimit import RateLimiter
from digest.runtime import App
from digest.store.models import utcnow

__all__ = ["SignupJob", "SignupRequest", "StaleFormError", "SubmittedTooFastError", "check_form",
           "form_stamp", "is_bot", "record", "second_press_stamp", "sign_up"]

STAMP_MAX_AGE = 24 * 3600
FUTURE_SKEW = 5  # seconds a replica's clock may run ahead before its stamp is "from the future"
_SOURCE = re.compile(r"[^A-Za-z0-9_.:-]+")


@dataclass(frozen=True)
class SignupRequest:
    """What the form or the JSON body carried."""

    email: str
    ip: str | None
    source: str = "web"
    honeypot: str = ""
    stamp: str | None = None
    timezone: str | None = None  # the reader's choices (``choices.signup_slot`` reads them)
    hour: str | None = None


def _signer(settings: Settings) -> Signer:
    # The salt is part of every stamp already served: never rename it.
    return Signer(settings.secret_key.get_secret_value(), salt="digest.signup-form")


def form_stamp(settings: Settings, now: float | None = None) -> str:
    """A signed 'page served at' time for the signup form."""
    served = time.time() if now is None else now
    return _signer(settings).sign(f"{served:.3f}").decode()


def _stamp_age(settings: Settings, request: SignupRequest, now: float | None) -> float | None:
    """Seconds since the form was served; None without a stamp; ValueError if forged."""
    if request.stamp is None:
        return None
    now = time.time() if now is None else now
    try:
        served = float(_signer(settings).unsign(request.stamp).decode())
    except (BadSignature, ValueError) as exc:
        raise ValueError("forged stamp") from exc
    return now - served


def is_bot(settings: Settings, request: SignupRequest, now: float | None = None) -> bool:
    """True for a filled honeypot or a stamp whose signature is wrong, nothing else.

    A correctly signed stamp was served by us, so a person may be behind it even when it is
    too fresh (autofill), stale (a tab left open for days) or from the future (a web replica
    with a skewed clock): ``check_form`` asks them to press again instead of dropping them.
    """
    if request.honeypot.strip():
        return True
    try:
        _stamp_age(settings, request, now)
    except ValueError:
        return True
    return False


class SubmittedTooFastError(SubscriberError):
    """The form came back faster than a person types: ask the reader to press again."""


class StaleFormError(SubmittedTooFastError):
    """A genuine stamp older than STAMP_MAX_AGE or ahead of our clock: press again, too."""


def check_form(settings: Settings, request: SignupRequest, now: float | None = None) -> None:
    """Screen a sign-up before ``sign_up``: an invalid address or a too-fast press is said.

    Bots are left alone here (``sign_up`` answers them with silence). A person whose form
    came back within DIGEST_MIN_FILL_SECONDS is never dropped: InvalidEmailError tells them
    what is wrong with the address; SubmittedTooFastError asks them to press again (the
    page they get carries ``second_press_stamp``, which is accepted at once).
    """
    if is_bot(settings, request, now):
        return
    addresses.normalise(request.email, settings.blocked_domains)
    age = _stamp_age(settings, request, now)
    if age is None:
        return
    if age < -FUTURE_SKEW or age > STAMP_MAX_AGE:
        raise StaleFormError("this form is out of date; please press Subscribe again "
                             "to confirm it is you")
    if age < settings.min_fill_seconds:
        raise SubmittedTooFastError("please press Subscribe again to confirm it is you")


def second_press_stamp(settings: Settings, now: float | None = None) -> str:
    """A stamp for the "press again" page: a second, deliberate press is a person's."""
    served = time.time() if now is None else now
    return form_stamp(settings, served - settings.min_fill_seconds)


@dataclass(frozen=True)
class SignupJob:
    """A checked sign-up, to be recorded (and its confirmation mailed) off the request."""

    address: str
    ip: str | None
    source: str
    at: datetime
    timezone: str | None = None  # checked by ``sign_up``; None: the operator's
    hour: int | None = None

    def as_args(self) -> list[str | int | None]:
        """JSON-ready arguments for the Celery task (``from_args`` reads them back).

        Without choices they are the four of old, which a worker not yet upgraded takes.
        """
        args: list[str | int | None] = [self.address, self.ip, self.source, self.at.isoformat()]
        if self.timezone is not None or self.hour is not None:
            args += [self.timezone, self.hour]
        return args

    @classmethod
    def from_args(cls, address: str, ip: str | None, source: str, at: str,
                  timezone: str | None = None, hour: int | None = None) -> SignupJob:
        return cls(address, ip, source, datetime.fromisoformat(at), timezone, hour)


def record(app: App, job: SignupJob) -> None:
    """Record a sign-up and mail its confirmation (the part that differs per address).

    The job's zone and hour are checked again (a queued message is input too).
    """
    slot = choices.signup_slot(app.settings, job.timezone, job.hour)
    optin.subscribe(app, job.address, ip=job.ip, source=job.source, now=job.at, slot=slot)


def sign_up(app: App, limiter: RateLimiter | None, request: SignupRequest,
            now: float | None = None, *,
            dispatch: Callable[[SignupJob], None] | None = None) -> None:
    """Check for bots and the per-IP limit, then hand the sign-up to ``dispatch``.

    Everything done here is the same for a new and a known address (no database, no mail),
    so the answer's timing tells nothing; ``dispatch`` (the web app's readers' jobs) records
    it after the answer. Without one it is recorded at once (CLI and tests). There is no
    per-address request limit: a flood of someone's address must not lock them out; what a
    flood can cause is one confirmation mail per ``optin.RESEND_AFTER``, kept in the
    database. Bots get silence, not an error.

    Raises InvalidEmailError for a bad address and RateLimitedError past a limit.
    """
    if is_bot(app.settings, request, now):
        return
    if limiter is not None and request.ip:
        limiter.hit("ip", request.ip)
    address = addresses.normalise(request.email, app.settings.blocked_domains)
    source = _SOURCE.sub("-", request.source.strip())[:40] or "web"
    slot = choices.signup_slot(app.settings, request.timezone, request.hour)
    job = SignupJob(address, request.ip, source, utcnow(), slot.timezone, slot.hour)
    (dispatch or (lambda queued: record(app, queued)))(job)
