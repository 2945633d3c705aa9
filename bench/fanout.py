"""Fan-out benchmark: N readers in PostgreSQL, two real Celery workers, Redis, a local sink.

    .venv/bin/python -m bench.fanout --readers 100000 [--metrics] [--spread]

Seeds a throwaway PostgreSQL database with COPY, queues one edition, and times from the
claim until the ledger says every batch is sent. Reports readers per second and the peak
resident memory of each worker (sampled from /proc). Needs PostgreSQL and Redis on 127.0.0.1.
With ``--metrics`` the workers count into a fresh PROMETHEUS_MULTIPROC_DIR (as in production)
and the counts read back from it are reported too, as proof they were on.

With ``--spread`` the readers live in 24 time zones and follow 16 topic choices
(``bench.spread``): the edition is claimed at the first zone's hour and each zone's batches
are released by the scheduled tick (``delivery.scheduled.run_tick``) at that zone's hour,
the ticks run back to back; the time is the whole fan-out's, from the first tick until the
last batch is sent.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
from sqlalchemy import create_engine, distinct, func, select, text

from bench.sink import celery_workers, running_sink, worker_env
from bench.spread import add_topics, release_times
from bench.spread import reader_columns as spread_reader
from digest.bootstrap import build
from digest.config import SAMPLE_FEED, Settings
from digest.delivery.dispatch import CeleryDispatch
from digest.delivery.scheduled import run_tick
from digest.delivery.send import send_digest
from digest.feeds.poll import poll_feeds
from digest.runtime import App
from digest.store import migrate as schema
from digest.store.models import Batch, Edition, EditionStatus
from digest.tasks import make_celery

# The same services the integration tests use (Redis db 9 is flushed).
PG_ADMIN_URL = os.environ.get("DIGEST_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def _settings(tmp: Path, database_url: str) -> Settings:
    """The benchmark's settings: nothing read from the environment or a .env file."""
    return Settings(
        _env_file=None,
        database_url=database_url, broker_url=REDIS_TEST_URL, mail_backend="sendgrid",
        sendgrid_api_key="test", feed_url=[str(SAMPLE_FEED)], outbox_dir=tmp / "outbox",
        base_url="https://news.example.org", secret_key="test-secret",
        from_email="digest@news.example.org", postal_address="1 Example Street, Istanbul",
        first_poll_window_days=100 * 365,  # announce the bundled sample's 2022 posts
    )


def _seed(url: str, readers: int, topic_ids: list[int] | None = None) -> None:
    """``readers`` weekly readers; with ``topic_ids``, spread over zones and topics."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY subscribers (email, email_hash, name, status, cadence, paused,"
                      " created_at, timezone, delivery_hour, slot, topic_ids) FROM STDIN") as copy:
            for i in range(readers):
                email = f"reader{i}@example.org"
                spread = (spread_reader(i, topic_ids) if topic_ids is not None
                          else (None, None, "", None))
                copy.write_row((email, hashlib.sha256(email.encode()).hexdigest(),
                                f"Zoë Reader {i}", "active", "weekly", False, "2026-01-01",
                                *spread))
        cur.execute("ANALYZE subscribers")


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _record_size(app: App) -> dict[str, float]:
    """The per-reader delivery record this send wrote: rows, and bytes on disk with indexes."""
    with app.engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM deliveries")).scalar_one()
        total, heap = conn.execute(text(
            "SELECT pg_total_relation_size('deliveries'), pg_relation_size('deliveries')")).one()
    return {"delivery_rows": int(rows), "deliveries_total_mb": total / 2**20,
            "deliveries_heap_mb": heap / 2**20,
            "bytes_per_delivery_row": total / rows if rows else 0.0}


def _spread_figures(app: App, edition_id: int) -> dict[str, float]:
    """How many batches (slots) and distinct mails (post sets) the spread send had."""
    with app.sessions() as s:
        batches, slots = s.execute(select(func.count(Batch.id), func.count(distinct(Batch.slot)))
                                   .where(Batch.edition_id == edition_id)).one()
    return {"batches": int(batches), "release_slots": int(slots)}


def _counted(directory: Path) -> dict[str, float]:
    """What the workers counted in ``directory``, read back as a scrape would."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    found = {}
    for name, labels, key in (("digest_readers_handed_over_total", {}, "metrics_readers"),
                              ("digest_batches_total", {"outcome": "sent"}, "metrics_batches"),
                              ("digest_provider_request_seconds_count",
                               {"provider": "sendgrid"}, "metrics_requests")):
        found[key] = registry.get_sample_value(name, labels) or 0
    return found


def _send(app: App, dispatch: CeleryDispatch, spread: bool) -> int:
    """Claim the edition and queue its batches (``spread``: tick at each zone's hour, back
    to back); the edition's id."""
    if not spread:
        result = send_digest(app, queue=True, dispatch=dispatch)
        return int(result.edition_id or 0)
    ticks = release_times(app, datetime.now(UTC))
    for at in ticks:
        run_tick(app, at, dispatch=dispatch)
    with app.sessions() as s:
        return int(s.scalars(select(Edition.id).order_by(Edition.id.desc())).first() or 0)


def run(readers: int, workers: int, metrics: bool = False,
        spread: bool = False) -> dict[str, float]:
    """Seed, send, and measure one fan-out of ``readers`` (``metrics``: workers count into
    a PROMETHEUS_MULTIPROC_DIR; ``spread``: over 24 zones and 16 topic choices)."""
    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    try:
        settings = _settings(tmp, url)
        app = build(settings)
        schema.upgrade(app.engine)
        poll_feeds(app)  # the bundled sample feed: the posts of the edition
        t0 = time.perf_counter()
        _seed(url, readers, add_topics(app) if spread else None)
        print(f"seeded {readers} readers in {time.perf_counter() - t0:.1f} s")
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()
        celery = make_celery(settings)
        prom = tmp / "prometheus"
        extra = {}
        if metrics:
            prom.mkdir()
            extra["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
        with running_sink() as sink, celery_workers(
            workers, worker_env(url, REDIS_TEST_URL, sink.url, **extra), tmp
        ) as procs:
            time.sleep(3)  # let the workers connect
            peak = {p.pid: 0.0 for p in procs}
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    for pid in peak:
                        peak[pid] = max(peak[pid], _rss_mb(pid))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            start = time.perf_counter()
            edition_id = _send(app, CeleryDispatch(send_task=celery.send_task), spread)
            queued = time.perf_counter() - start
            while True:
                with app.sessions() as s:
                    status = s.get(Edition, edition_id).status  # type: ignore[union-attr]
                if status is not EditionStatus.SENDING:
                    break
                time.sleep(0.2)
            elapsed = time.perf_counter() - start
            stop.set()
            sampler.join()
        delivered = sum(sink.received.values())
        figures = {"readers": readers, "delivered": delivered, "seconds": elapsed,
                   "claim_and_queue_seconds": queued, "readers_per_second": readers / elapsed,
                   "peak_worker_rss_mb": max(peak.values()), "requests": sink.requests,
                   **(_spread_figures(app, edition_id) if spread else {}),
                   **_record_size(app), **(_counted(prom) if metrics else {})}
        app.engine.dispose()
        return figures
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--spread", action="store_true",
                        help="readers over 24 time zones and 16 topic choices")
    parser.add_argument("--metrics", action="store_true",
                        help="workers count into a PROMETHEUS_MULTIPROC_DIR, as in production")
    args = parser.parse_args()
    # A SIGTERM (e.g. from `timeout`) still runs the clean-up: workers killed, database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    figures = run(args.readers, args.workers, args.metrics, args.spread)
    print(f"metrics: {'on' if args.metrics else 'off'}")
    for key, value in figures.items():
        print(f"{key}: {value:.1f}" if isinstance(value, float) else f"{key}: {value}")
    print(f"cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
