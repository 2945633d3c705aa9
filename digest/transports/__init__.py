"""Mail transports behind one small interface (see ``base.Transport``)."""

from digest.transports.base import Transport

__all__ = ["Transport"]
