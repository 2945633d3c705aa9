"""The operator's alert episodes (``delivery.alerts``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from digest.store.columns import Base, UTCDateTime, utcnow


class OperatorAlert(Base):
    """One alert episode for the operator by ``key``, mailed once; closed when it clears."""

    __tablename__ = "operator_alerts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detail: Mapped[str] = mapped_column(Text, default="")
