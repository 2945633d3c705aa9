"""The Celery entry point: ``celery -A worker worker`` and ``celery -A worker beat``.

It only exposes the app configured in ``digest.tasks`` (same settings as the CLI).
"""

from digest.tasks import celery_app

app = celery_app

__all__ = ["app", "celery_app"]
