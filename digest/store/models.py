"""The database record: feeds, posts, subscribers, editions and the delivery ledger.

The database is the source of truth; Redis only carries work. Unique keys make reruns
harmless: a post is stored once per feed (``uq_post_identity``), an edition once per cadence
and period (``Edition.key``), a batch once per edition and sequence number (``Batch.id``).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

# Re-exported: the rest of the project names the column types, the base and the tables kept
# in modules of their own (alerts, topics) from here.
from digest.store.alerts import OperatorAlert as OperatorAlert
from digest.store.columns import Base as Base
from digest.store.columns import BigId as BigId
from digest.store.columns import UTCDateTime as UTCDateTime
from digest.store.columns import enum_column as _enum
from digest.store.columns import new_link_key as new_link_key
from digest.store.columns import utcnow as utcnow
from digest.store.topics import Topic as Topic

MAX_ID = 2**63 - 1  # the largest id a BIGINT holds; anything past it is simply not found


class FeedStatus(enum.StrEnum):
    ACTIVE = "active"
    FAILING = "failing"
    GONE = "gone"


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    configured_url: Mapped[str] = mapped_column(String(2000))  # the URL the operator gave
    title: Mapped[str | None] = mapped_column(String(500))
    site_url: Mapped[str | None] = mapped_column(String(2000))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[FeedStatus] = mapped_column(_enum(FeedStatus), default=FeedStatus.ACTIVE)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hub_url: Mapped[str | None] = mapped_column(String(2000))
    topic_url: Mapped[str | None] = mapped_column(String(2000))  # rel="self": the WebSub topic
    websub_secret: Mapped[str | None] = mapped_column(String(200))
    websub_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    posts: Mapped[list[Post]] = relationship(back_populates="feed")


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("feed_id", "identity", name="uq_post_identity"),
        Index("ix_posts_announce", "announce", "first_seen_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    identity: Mapped[str] = mapped_column(String(255))  # guid, else link, else content hash
    guid: Mapped[str | None] = mapped_column(String(2000))
    link: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(String(1000))
    summary: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    thumbnail_url: Mapped[str | None] = mapped_column(String(2000))
    reading_minutes: Mapped[int] = mapped_column(Integer, default=1)
    author: Mapped[str | None] = mapped_column(String(300))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # False for the backlog recorded on a feed's first poll: known, never announced.
    announce: Mapped[bool] = mapped_column(Boolean, default=True)
    # False once the post vanished from the feed before being sent: left out of digests.
    in_feed: Mapped[bool] = mapped_column(Boolean, default=True)
    # The feed's <category> values as topic ids (``topics``), in the feed's order.
    topic_ids: Mapped[list[int]] = mapped_column(JSON, default=list)

    feed: Mapped[Feed] = relationship(back_populates="posts")


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"  # signed up, not confirmed
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    DELETED = "deleted"  # personal data erased; only the hash remains


class Cadence(enum.StrEnum):
    WEEKLY = "weekly"
    DAILY = "daily"
    INSTANT = "instant"  # every new post


class Subscriber(Base):
    __tablename__ = "subscribers"
    # sqlite_autoincrement: SQLite would otherwise hand a deleted reader's id to the next one.
    __table_args__ = (Index("ix_subscribers_sendable", "status", "cadence", "id"),
                      # The console dashboard's counts (migration 0006, readers.census).
                      Index("ix_subscribers_created", "created_at"),
                      Index("ix_subscribers_confirmed", "confirmed_at"),
                      Index("ix_subscribers_left", "unsubscribed_at", "status"),
                      # Readers by delivery slot (migration 0008, digest.slots).
                      Index("ix_subscribers_slot", "status", "cadence", "slot", "id"),
                      Index("ix_subscribers_slot_changed", "slot_changed_at"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    # sha256 of the normalised address: survives "delete me" so imports cannot re-add it.
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus), default=SubscriberStatus.PENDING
    )
    cadence: Mapped[Cadence] = mapped_column(_enum(Cadence), default=Cadence.WEEKLY)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Consent record
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_ip: Mapped[str | None] = mapped_column(String(64))
    consent_source: Mapped[str | None] = mapped_column(String(100))
    suppressed_reason: Mapped[str | None] = mapped_column(String(300))
    # Signed into the reader's links and replaced on erasure, so old links die with the
    # reader (digest.tokens). NULL for readers from before it existed.
    link_key: Mapped[str | None] = mapped_column(String(32), default=new_link_key)
    # When the reader wants the digest (NULL: the operator's DIGEST_TIMEZONE and SCHEDULE).
    timezone: Mapped[str | None] = mapped_column(String(64))
    delivery_hour: Mapped[int | None] = mapped_column(SmallInteger)  # 0-23, local
    delivery_weekday: Mapped[int | None] = mapped_column(SmallInteger)  # 0 Monday .. 6 Sunday
    # The three above as one key (digest.slots.slot_key; "" = all the operator's), and the
    # key an edition planned before the last change still uses (digest.slots).
    slot: Mapped[str] = mapped_column(String(80), default="", server_default="")
    slot_history: Mapped[list[list[str | None]] | None] = mapped_column(JSON(none_as_null=True))
    slot_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Topic ids the reader follows (SQL NULL, which Python's None writes: everything).
    topic_ids: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True))


class EditionStatus(enum.StrEnum):
    SENDING = "sending"
    SENT = "sent"
    EMPTY = "empty"  # nothing new: no email, reason recorded
    FAILED = "failed"


class Edition(Base):
    """One digest issue: claimed once per cadence and period under ``key``."""

    __tablename__ = "editions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)  # e.g. weekly:2026-11-23
    cadence: Mapped[Cadence] = mapped_column(_enum(Cadence))
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[EditionStatus] = mapped_column(_enum(EditionStatus))
    reason: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(998), default="")
    html: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    post_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)
    batch_count: Mapped[int] = mapped_column(Integer, default=0)
    # Snapshot bound: readers with id <= this (and eligible) are the recipients.
    max_subscriber_id: Mapped[int] = mapped_column(BigId, default=0)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set while no new batch may be claimed (the operator's pause, the complaint breaker).
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    opens: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)

    batches: Mapped[list[Batch]] = relationship(back_populates="edition")


class BatchStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    # Its worker died after the request went out: waiting for the provider's events.
    IN_DOUBT = "in_doubt"


class Batch(Base):
    """A ledger row: one request's worth of recipients, identified deterministically.

    The recipients are the eligible readers with ``after_id < id <= upto_id``; ranges of one
    edition never overlap, so no reader is in two batches.
    """

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_status", "edition_id", "status"),
                      Index("ix_batches_release", "released_at", "release_at"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "<edition>-<seq>"
    edition_id: Mapped[int] = mapped_column(ForeignKey("editions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    after_id: Mapped[int] = mapped_column(BigId)
    upto_id: Mapped[int] = mapped_column(BigId)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[BatchStatus] = mapped_column(_enum(BatchStatus), default=BatchStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # The readers' delivery slot this batch holds (NULL: every slot, a send by hand), when it
    # is due (NULL: at once) and when it was handed to the workers (delivery.release).
    slot: Mapped[str | None] = mapped_column(String(80))
    release_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    edition: Mapped[Edition] = relationship(back_populates="batches")


class WebhookEvent(Base):
    """A processed SendGrid event, kept so that a replayed ``sg_event_id`` is ignored."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_reader", "email_hash", "received_at"),)

    sg_event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event: Mapped[str] = mapped_column(String(40))
    email_hash: Mapped[str | None] = mapped_column(String(64))
    edition_id: Mapped[int | None] = mapped_column(BigId)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryStatus(enum.IntEnum):
    """What became of one edition for one reader, as a small integer (millions of rows). Higher
    is later news, but a final outcome is never overwritten by an earlier stage (``record``)."""

    HANDED = 1  # our request carrying it was accepted (SendGrid 202, SMTP 250 for this reader)
    PROCESSED = 2  # the provider's own record that it accepted it ("processed" event)
    DEFERRED = 3  # the receiving server asked the provider to try again later
    DELIVERED = 4
    BOUNCED = 5
    DROPPED = 6
    COMPLAINED = 7  # a spam report
    UNSUBSCRIBED = 8  # through the provider's own unsubscribe
    REFUSED = 9  # refused for this reader alone (an SMTP 5xx for one recipient)
    FAILED = 10  # the batch failed for good; this reader did not get the edition
    # Not sent: the reader had received every post of it in other editions (a cadence
    # switch, the welcome mail's latest digest, a manual send). Counts as received.
    ALREADY_RECEIVED = 11


class Delivery(Base):
    """One reader's copy of one edition: handed over when, and what followed (``record``).
    About 117 bytes a row on PostgreSQL with its indexes (BENCHMARKS.md)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_subscriber", "subscriber_id"),
        # Only the rare outcomes (BOUNCED and later), for the console dashboard (0006).
        Index("ix_deliveries_outcome", "edition_id", "status",
              postgresql_where=text("status >= 5"), sqlite_where=text("status >= 5")),
    )

    # No foreign key: a lookup per row costs a bulk write ~4 ms per 1000; editions stay.
    edition_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[int] = mapped_column(SmallInteger)  # a DeliveryStatus
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # handed over (or first heard of)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(100))
