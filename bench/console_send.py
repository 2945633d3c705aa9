"""Console send pages with a million readers: how long each answers (p50, p95).

    .venv/bin/python -m bench.console_send                  # 1,000,000 readers, 40 editions
    .venv/bin/python -m bench.console_send --readers 100000 --requests 50

Creates a throwaway PostgreSQL database and seeds it in SQL (``generate_series``): the readers
(active, weekly), 40 sent editions of them with their ledger batches (1,000 readers each), and
the per-reader delivery record of the newest ``--recorded`` editions (one row per reader,
statuses mixed as a provider's events leave them), plus new posts for the next digest. Then it
signs in to the console through its form and asks each page ``--requests`` times, one at a
time, in this process (the real app through Starlette's TestClient: the server's whole work,
no network): the editions' history, one edition, a send's progress fragment (what the live
page polls every second), send now (the dry run per cadence) and the preview.

Needs PostgreSQL on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from digest.bootstrap import build
from digest.config import Settings
from digest.store import migrate as schema

PG_ADMIN_URL = os.environ.get("DIGEST_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Sign-in rate limits only; nothing is queued (the pages measured send nothing).
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TOKEN = "bench-admin-token"
BASE = "https://news.example.org"
EDITIONS = 40
BATCH = 1000

SEED = [
    """INSERT INTO subscribers (email, email_hash, name, status, cadence, paused, created_at,
                                link_key)
       SELECT 'reader' || g || '@example.org', md5(g::text) || md5((g + 1)::text), NULL,
              'active', 'weekly', false, now() - interval '400 days', md5(g::text)
       FROM generate_series(1, :readers) g""",
    """INSERT INTO feeds (url, configured_url, title, status, consecutive_failures, created_at)
       VALUES ('https://blog.example.org/feed/', 'https://blog.example.org/feed/', 'Blog',
               'active', 0, now())""",
    """INSERT INTO posts (feed_id, identity, link, title, summary, content_hash,
                         reading_minutes, first_seen_at, updated_at, announce, in_feed)
       SELECT 1, 'p' || g, 'https://blog.example.org/' || g || '/', 'Post number ' || g,
              'What happened, in two sentences. And why it matters.', md5(g::text), 3,
              now() - ((:editions + 2 - g) || ' days')::interval, now(), true, true
       FROM generate_series(1, :editions + 5) g""",
    """INSERT INTO editions (key, cadence, status, subject, html, text, post_ids,
                            recipient_count, batch_count, max_subscriber_id, forced,
                            created_at, finished_at, delivered, opens, clicks)
       SELECT 'weekly:' || g, 'weekly', 'sent', 'Blog: Post number ' || g,
              '<html><body><p>Post number ' || g || '</p></body></html>',
              'Post number ' || g, ('[' || g || ']')::json, :readers, :readers / 1000,
              :readers, false, now() - ((:editions + 1 - g) || ' days')::interval,
              now() - ((:editions + 1 - g) || ' days')::interval, :readers * 9 / 10,
              :readers / 3, :readers / 20
       FROM generate_series(1, :editions) g""",
    """INSERT INTO batches (id, edition_id, seq, after_id, upto_id, size, status, attempts,
                           sent_at)
       SELECT e || '-' || b, e, b, (b - 1) * 1000, b * 1000, 1000,
              CASE WHEN b % 97 = 0 THEN 'failed' ELSE 'sent' END, 1, now()
       FROM generate_series(1, :editions) e, generate_series(1, :readers / 1000) b""",
    """INSERT INTO deliveries (edition_id, subscriber_id, status, at)
       SELECT e, g, CASE WHEN g % 97 = 0 THEN 5 WHEN g % 500 = 0 THEN 7
                         WHEN g % 3 = 0 THEN 2 ELSE 4 END, now()
       FROM generate_series(:editions - :recorded + 1, :editions) e,
            generate_series(1, :readers) g""",
]


def seed(url: str, readers: int, recorded: int) -> None:
    engine = create_engine(url)
    schema.upgrade(engine)
    params = {"readers": readers, "editions": EDITIONS, "recorded": recorded}
    with engine.begin() as conn:
        for statement in SEED:
            conn.execute(text(statement), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def signed_in(settings: Settings) -> TestClient:
    from digest.web.app import create_app

    client = TestClient(create_app(build(settings)), base_url=BASE, follow_redirects=False)
    answer = client.post("/admin/sign-in", data={"password": TOKEN, "next": "/admin"})
    assert answer.status_code == 303, answer.text
    return client


def measure(client: TestClient, path: str, requests: int) -> tuple[float, float]:
    """(p50, p95) in milliseconds over ``requests`` GETs after one warm-up."""
    assert client.get(path).status_code == 200, path
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, path
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=1_000_000)
    parser.add_argument("--recorded", type=int, default=3,
                        help="newest editions with a delivery row per reader")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--reuse", metavar="URL", help="measure a database seeded before "
                        "(by --keep) instead of seeding a new one")
    parser.add_argument("--keep", action="store_true", help="keep the database (its URL is "
                        "printed) to look at the queries")
    args = parser.parse_args(argv)
    name = f"digest_bench_console_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    if args.reuse:
        url, args.keep = args.reuse, True
    else:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        if not args.reuse:
            started = time.perf_counter()
            seed(url, args.readers, args.recorded)
            print(f"seeded {args.readers} readers, {EDITIONS} editions, {args.recorded} with "
                  f"every reader recorded, in {time.perf_counter() - started:.0f} s")
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, database_url=url, base_url=BASE, secret_key="bench-secret",
                admin_token=TOKEN, mail_backend="outbox", outbox_dir=Path(tmp),
                from_email="digest@news.example.org", postal_address="1 Example Street",
                feed_url=["https://blog.example.org/feed/"], allowed_hosts=["news.example.org"],
                broker_url=REDIS_URL, redis_url=REDIS_URL)
            client = signed_in(settings)
            newest = EDITIONS
            pages = [("editions (history)", "/admin/editions"),
                     ("editions, older page", f"/admin/editions?before={newest - 20}"),
                     ("one edition", f"/admin/editions/{newest}"),
                     ("send progress fragment", f"/admin/sends/{newest}/progress"),
                     ("send now (dry run x3)", "/admin/send-now"),
                     ("preview", "/admin/next")]
            print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8}")
            for label, path in pages:
                p50, p95 = measure(client, path, args.requests)
                print(f"{label:28} {p50:8.1f} {p95:8.1f}")
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
