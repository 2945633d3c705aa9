"""The topics table: the feeds' categories as topics readers may follow (``feeds.topics``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from digest.store.columns import Base, BigId, UTCDateTime, utcnow


class Topic(Base):
    """A topic readers may follow: one of the feeds' ``<category>`` values, under the name
    the operator gives it; hidden, or merged into another topic (``topics``)."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # the category, normalised
    name: Mapped[str] = mapped_column(String(200))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id",
                                                                  ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
