"""Console benchmark: the operator's pages with N readers in PostgreSQL, over real HTTP.

    .venv/bin/python -m bench.console --readers 1000000

Seeds a throwaway PostgreSQL database in SQL (readers of every status and cadence, signed
up over a year; a few sent editions with a delivery row per reader; provider events), serves
the real app with uvicorn in a subprocess, signs in through the sign-in form, and times each
page: the dashboard, a readers search by address prefix, a reader's page, the editions list.
Reports p50/p95/max per page over ``--rounds`` requests, after two warm-up requests each.
The dashboard is timed twice: as the operator usually sees it (the web process's snapshot,
at most a minute old) and counted afresh (``?refresh=1``, what the first view per process and
each background refresh cost), the latter over ``--refresh-rounds`` requests.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from bench.signup import _free_port
from digest.bootstrap import build
from digest.config import SAMPLE_FEED, Settings
from digest.feeds.poll import poll_feeds
from digest.store import migrate as schema

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("DIGEST_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TOKEN = "bench-admin-token-" + uuid.uuid4().hex
EDITIONS = 8

SEED_READERS = """
INSERT INTO subscribers (email, email_hash, name, status, cadence, paused, created_at,
                         confirmed_at, unsubscribed_at, consent_at, consent_source, link_key)
SELECT 'reader' || i || '@example' || (i % 97) || '.org',
       'h1:' || md5(i::text),
       'Reader ' || i,
       CASE WHEN i % 20 = 0 THEN 'unsubscribed' WHEN i % 50 = 1 THEN 'bounced'
            WHEN i % 33 = 2 THEN 'pending' ELSE 'active' END,
       CASE WHEN i % 10 = 0 THEN 'daily' WHEN i % 25 = 3 THEN 'instant' ELSE 'weekly' END,
       false,
       now() - ((i % 365) || ' days')::interval,
       now() - ((i % 365) || ' days')::interval + interval '5 minutes',
       CASE WHEN i % 20 = 0 THEN now() - ((i % 30) || ' days')::interval END,
       now() - ((i % 365) || ' days')::interval, 'signup-form', md5(i::text)
FROM generate_series(1, :n) AS i
"""

SEED_EDITIONS = """
INSERT INTO editions (key, cadence, period_start, period_end, status, subject, html, text,
                      post_ids, recipient_count, batch_count, max_subscriber_id, forced,
                      created_at, finished_at, delivered, opens, clicks)
SELECT 'weekly:bench-' || e, 'weekly', now() - (e * 7 || ' days')::interval,
       now() - ((e - 1) * 7 || ' days')::interval, 'sent', 'Week ' || e,
       '<p>Digest ' || e || '</p>', 'Digest ' || e, '[]', :n, :n / 1000, :n, false,
       now() - (e * 7 || ' days')::interval, now() - (e * 7 || ' days')::interval, 0, 0, 0
FROM generate_series(1, :editions) AS e
"""

# Each edition: a row per active weekly reader; some delivered, bounced, complained.
SEED_DELIVERIES = """
INSERT INTO deliveries (edition_id, subscriber_id, status, at)
SELECT :edition, s.id,
       CASE WHEN s.id % 1000 = 7 THEN 7 WHEN s.id % 200 = 3 THEN 5 ELSE 4 END,
       now() - interval '1 day'
FROM subscribers s WHERE s.status = 'active' AND s.cadence = 'weekly'
"""

SEED_EVENTS = """
INSERT INTO webhook_events (sg_event_id, event, email_hash, edition_id, received_at)
SELECT 'ev-' || i, CASE WHEN i % 3 = 0 THEN 'bounce' ELSE 'delivered' END,
       'h1:' || md5(i::text), :edition,
       now() - ((i % 60) || ' days')::interval
FROM generate_series(1, :n) AS i
"""


def _settings(tmp: Path, url: str) -> Settings:
    return Settings(
        _env_file=None, database_url=url, broker_url=REDIS_URL, mail_backend="outbox",
        feed_url=[str(SAMPLE_FEED)], outbox_dir=tmp / "outbox",
        base_url="https://news.example.org", secret_key="bench-secret",
        from_email="digest@news.example.org", postal_address="1 Example Street, Istanbul",
        first_poll_window_days=100 * 365,
    )


def _env(url: str, port: int, tmp: Path) -> dict[str, str]:
    return {
        "DIGEST_DATABASE_URL": url, "DIGEST_BROKER_URL": REDIS_URL,
        "DIGEST_MAIL_BACKEND": "outbox",
        "DIGEST_OUTBOX_DIR": str(tmp / "outbox"), "DIGEST_BASE_URL": f"http://127.0.0.1:{port}",
        "DIGEST_SECRET_KEY": "bench-secret", "DIGEST_FROM_EMAIL": "digest@news.example.org",
        "DIGEST_POSTAL_ADDRESS": "1 Example Street, Istanbul",
        "DIGEST_FEED_URL": str(SAMPLE_FEED), "DIGEST_ADMIN_TOKEN": TOKEN,
    }


def seed(url: str, readers: int) -> int:
    """The readers, editions, deliveries and events; returns one reader id to look up."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(SEED_READERS), {"n": readers})
        conn.execute(text(SEED_EDITIONS), {"n": readers, "editions": EDITIONS})
        first = conn.execute(text("SELECT min(id) FROM editions")).scalar_one()
    for edition in range(first, first + EDITIONS):
        with engine.begin() as conn:
            conn.execute(text(SEED_DELIVERIES), {"edition": edition})
    with engine.begin() as conn:
        conn.execute(text(SEED_EVENTS), {"n": min(readers, 100_000), "edition": first})
        n = min(readers, 424242)  # a reader from the middle of the list (seeded addresses)
        reader = conn.execute(text("SELECT id FROM subscribers WHERE email = :e"),
                              {"e": f"reader{n}@example{n % 97}.org"}).scalar()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return int(reader or 1)


def _serve(env: dict[str, str], port: int, tmp: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "digest.web.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"],
        cwd=tmp, env={**os.environ, **env, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("uvicorn did not start")


def sign_in(client: httpx.Client) -> None:
    """Through the form, as the operator does (the admin token typed as the password)."""
    form = client.get("/admin/sign-in")
    fields = dict(re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', form.text))
    fields["password"] = TOKEN
    answer = client.post("/admin/sign-in", data=fields)
    if answer.status_code >= 400 or client.get("/admin").status_code != 200:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text[:300]}")


def time_page(client: httpx.Client, path: str, rounds: int) -> dict[str, float]:
    for _ in range(2):
        client.get(path).raise_for_status()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times),
            "p95_ms": times[max(0, round(0.95 * len(times)) - 1)], "max_ms": times[-1]}


def run(readers: int, rounds: int, refresh_rounds: int) -> dict[str, dict[str, float]]:
    name = f"digest_console_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="digest-console-bench-"))
    proc = None
    try:
        app = build(_settings(tmp, url))
        schema.upgrade(app.engine)
        poll_feeds(app)  # the bundled sample: the next digest has posts
        app.engine.dispose()
        start = time.perf_counter()
        reader = seed(url, readers)
        print(f"seeded {readers} readers, {EDITIONS} editions in "
              f"{time.perf_counter() - start:.0f} s")
        port = _free_port()
        proc = _serve(_env(url, port, tmp), port, tmp)
        pages = {
            "dashboard": "/admin",
            "dashboard, counted afresh": "/admin?refresh=1",
            "readers search by prefix": "/admin/readers?q=reader4242",
            "a reader's page": f"/admin/readers/{reader}",
            "editions": "/admin/editions",
        }
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          follow_redirects=True) as client:
            sign_in(client)
            return {label: time_page(client, path,
                                     refresh_rounds if "refresh=1" in path else rounds)
                    for label, path in pages.items()}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--refresh-rounds", type=int, default=20,
                        help="requests timed for the dashboard counted afresh")
    args = parser.parse_args()
    figures = run(args.readers, args.rounds, args.refresh_rounds)
    print(f"{'page':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for label, row in figures.items():
        print(f"{label:28} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['max_ms']:8.1f}")


if __name__ == "__main__":
    main()
