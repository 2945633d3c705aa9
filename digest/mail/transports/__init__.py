"""Mail transports behind one small interface (see ``base.Transport``)."""

from digest.mail.transports.base import Transport

__all__ = ["Transport"]
