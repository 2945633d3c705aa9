"""Every error digest raises on purpose, in one tree.

    DigestError
    ├── ConfigError                 a setting is missing or invalid (names the setting)
    ├── FeedError                   a feed could not be fetched or read (carries the URL)
    │   ├── FeedFetchError          network failure, timeout, HTTP 4xx/5xx, body too large
    │   │   └── FeedGoneError       HTTP 410: the feed is disabled
    │   └── FeedParseError          the bytes are not a feed with usable entries
    ├── DeliveryError               a message could not be handed to the mail provider
    │   ├── TransientDeliveryError  worth retrying: 429, 5xx, timeouts (may carry retry_after)
    │   ├── PermanentDeliveryError  never retried: 400, 401, 403, 413 (carries the provider text)
    │   └── BrokerUnavailableError  queued batches could not be handed to the workers' broker
    ├── EditionError                a digest cannot be built or claimed
    │   ├── AlreadySentError        this cadence and period already has an edition
    │   └── NoSuchEditionError      no edition has this number
    ├── SubscriberError             bad reader input (address, token, import file)
    │   ├── InvalidEmailError
    │   ├── InvalidTokenError
    │   └── RateLimitedError        too many requests (carries retry_after seconds)
    └── TopicError                  a topic change the catalog refuses (a merge cycle, a name)
        └── NoSuchTopicError        no topic has this id

Lower-library errors (httpx, feedparser, sendgrid, smtplib) are translated into these at the
boundary with ``raise ... from exc`` so that shells only ever catch ``DigestError``.
"""

from __future__ import annotations


class DigestError(Exception):
    """Root of every error digest raises on purpose."""


class ConfigError(DigestError):
    """A setting is missing or invalid."""


class FeedError(DigestError):
    """A feed could not be fetched or read."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class FeedFetchError(FeedError):
    """The feed could not be fetched (network, timeout, HTTP error, too large)."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(url, reason)
        self.status = status


class FeedGoneError(FeedFetchError):
    """The server answered 410 Gone: the feed is disabled."""


class FeedParseError(FeedError):
    """The document is not a feed with usable entries."""


class DeliveryError(DigestError):
    """A message could not be handed to the mail provider."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientDeliveryError(DeliveryError):
    """Worth retrying later (429, 5xx, timeouts)."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Never retried (400, 401, 403, 413); the provider's text is kept for the operator."""


class BrokerUnavailableError(DeliveryError):
    """The broker refused the queued batches; they stay recorded for ``digest reconcile``."""


class EditionError(DigestError):
    """A digest cannot be built or claimed."""


class AlreadySentError(EditionError):
    """This cadence and period already has an edition."""

    def __init__(self, key: str, edition_id: int) -> None:
        super().__init__(f"the digest for {key} was already claimed (edition {edition_id}); "
                         "nothing was sent twice")
        self.key = key
        self.edition_id = edition_id


class NoSuchEditionError(EditionError):
    """No edition has this number."""


class SubscriberError(DigestError):
    """Bad reader input."""


class InvalidEmailError(SubscriberError):
    """The address is not a valid email address."""


class InvalidTokenError(SubscriberError):
    """The link's token is forged, tampered with or expired."""


class RateLimitedError(SubscriberError):
    """Too many requests; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; try again in {retry_after} s")
        self.retry_after = retry_after


class TopicError(DigestError):
    """A topic change the catalog refuses (merging into itself or in a cycle, an empty name)."""


class NoSuchTopicError(TopicError):
    """No topic has this id."""

    def __init__(self, topic_id: int) -> None:
        super().__init__(f"no topic {topic_id} (see `digest topics list`)")
        self.topic_id = topic_id
