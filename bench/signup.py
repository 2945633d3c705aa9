"""Sign-up benchmark: throughput, latency, and whether timing tells a known address apart.

    .venv/bin/python -m bench.signup                 # 2 uvicorn workers, 5000 sign-ups
    .venv/bin/python -m bench.signup --dispatch celery   # mails from 2 Celery workers
    .venv/bin/python -m bench.signup --code DIR      # the same against another checkout

Creates a throwaway PostgreSQL database, seeds known (active) readers, and starts
``uvicorn --workers N`` on 127.0.0.1 with the settings a production install would have
(PostgreSQL, the SendGrid backend pointed at a local SendGrid-compatible sink in this process,
Redis rate limits with the per-IP limit raised so one client can drive it). Then, with httpx
(async) from this process:

1. Timing: 200 pairs of one new and one known address, each pair in random order, one
   request at a time on a warm keep-alive connection, with a pause after each so the
   previous sign-up's mail is not competing. Reports the medians and the median paired
   difference (new minus known).
2. Throughput: ``--signups`` new addresses over ``--concurrency`` connections. Reports
   answered sign-ups per second, p50/p99 latency, and the time until every sign-up is recorded
   and its confirmation has reached the sink (the work that now follows the answer). With
   ``--dispatch celery`` the workers start only after the answers, so the web tier and the
   workers are measured apart (in production they need not share the web machine's cores).

Everything (PostgreSQL, Redis, uvicorn, the sink and the client) shares one machine.
Needs PostgreSQL and Redis on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, func, select, text

from bench.sink import celery_workers, running_sink, worker_env
from digest import schema, subscribers
from digest.config import SAMPLE_FEED, Settings
from digest.models import Subscriber
from digest.wiring import build

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("DIGEST_TEST_PG_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
# The benchmark's own Celery queue, apart from the tests' (db 9), flushed before a run.
BENCH_BROKER_URL = os.environ.get("DIGEST_BENCH_BROKER_URL", "redis://127.0.0.1:6379/11")
PAIRS = 200

# The ASGI factory uvicorn imports in each worker: the real app, per-IP limit raised (one
# client drives the benchmark from 127.0.0.1), per-address limits as configured.
FACTORY = '''
import uuid
from digest.ratelimit import Limit, RateLimiter
from digest.web.app import create_app

def web_app():
    limits = {"ip": Limit(10**9, 3600), "email": Limit(10**9, 3600)}
    limiter = RateLimiter("%s", prefix="bench:" + uuid.uuid4().hex, limits=limits)
    return create_app(limiter=limiter)
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(database_url: str, sink_url: str, port: int, tmp: Path,
         dispatch: str) -> dict[str, str]:
    return {
        "DIGEST_DATABASE_URL": database_url, "DIGEST_BROKER_URL": BENCH_BROKER_URL,
        "DIGEST_MAIL_BACKEND": "sendgrid", "SENDGRID_API_KEY": "bench",
        "DIGEST_SENDGRID_HOST": sink_url, "DIGEST_BASE_URL": f"http://127.0.0.1:{port}",
        "DIGEST_SECRET_KEY": "bench-secret-" + uuid.uuid4().hex,
        "DIGEST_FROM_EMAIL": "digest@news.example.org",
        "DIGEST_POSTAL_ADDRESS": "1 Example Street, Istanbul", "DIGEST_FEED_URL": str(SAMPLE_FEED),
        "DIGEST_OUTBOX_DIR": str(tmp / "outbox"), "DIGEST_DISPATCH": dispatch,
    }


def _seed(settings: Settings, known: int) -> None:
    """``known`` active readers known0@... through the service layer (its own hashing)."""
    app = build(settings)
    schema.upgrade(app.engine)
    for i in range(known):
        subscribers.add(app, f"known{i}@example.org")
    app.engine.dispose()


def _start_uvicorn(code: Path, env: dict[str, str], port: int, workers: int,
                   tmp: Path) -> subprocess.Popen[bytes]:
    (tmp / "digest_bench_app.py").write_text(FACTORY % REDIS_TEST_URL)
    full_env = {**os.environ, **env, "PYTHONPATH": f"{tmp}{os.pathsep}{code}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "digest_bench_app:web_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--log-level", "warning", "--no-access-log"],
        cwd=tmp, env=full_env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                time.sleep(1.0)  # every worker up
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("uvicorn did not start")


async def _post(client: httpx.AsyncClient, address: str) -> float:
    start = time.perf_counter()
    response = await client.post("/subscribe", json={"email": address})
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{address}: {response.status_code} {response.text[:200]}")
    return elapsed


async def _timing(base: str, run_id: str) -> dict[str, float]:
    rng = random.Random(20261128)
    new_times: list[float] = []
    known_times: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for i in range(50):  # warm both workers, connections and caches
            await _post(client, f"warm{i}-{run_id}@example.org")
        await asyncio.sleep(1.0)
        for i in range(PAIRS):
            pair = [("new", f"new{i}-{run_id}@example.org"), ("known", f"known{i}@example.org")]
            rng.shuffle(pair)
            for kind, address in pair:
                elapsed = await _post(client, address)
                (new_times if kind == "new" else known_times).append(elapsed)
                await asyncio.sleep(0.03)  # the previous sign-up's mail is done meanwhile
    diffs = [n - k for n, k in zip(new_times, known_times, strict=True)]
    return {"pairs": PAIRS,
            "new_median_ms": statistics.median(new_times) * 1000,
            "known_median_ms": statistics.median(known_times) * 1000,
            "median_difference_ms": (statistics.median(new_times)
                                     - statistics.median(known_times)) * 1000,
            "median_paired_difference_ms": statistics.median(diffs) * 1000}


async def _throughput(base: str, run_id: str, signups: int,
                      concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(signups):
        queue.put_nowait(f"load{i}-{run_id}@example.org")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            latencies.append(await _post(client, queue.get_nowait()))

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {"signups": signups, "concurrency": concurrency, "seconds": elapsed,
            "answered_per_second": signups / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def _wait_recorded(database_url: str, run_id: str, expected: int, timeout: float) -> float:
    """Seconds until ``expected`` load sign-ups of this run are in the database."""
    engine = create_engine(database_url)
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < timeout:
            with engine.connect() as conn:
                done = conn.scalar(select(func.count()).select_from(Subscriber).where(
                    Subscriber.email.like(f"load%-{run_id}@example.org")))
            if done is not None and done >= expected:
                break
            time.sleep(0.1)
        return time.perf_counter() - start
    finally:
        engine.dispose()


def run(code: Path, workers: int, signups: int, concurrency: int, dispatch: str,
        celery_count: int) -> dict[str, float | str]:
    name = f"digest_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="digest-bench-signup-"))
    port = _free_port()
    run_id = uuid.uuid4().hex[:6]
    proc = None
    try:
        with running_sink() as sink, ExitStack() as stack:
            env = _env(url, sink.url, port, tmp, dispatch)
            _seed(Settings(_env_file=None, database_url=url,
                           secret_key=env["DIGEST_SECRET_KEY"], base_url=env["DIGEST_BASE_URL"],
                           outbox_dir=tmp / "outbox"), known=PAIRS * 10)
            if dispatch == "celery":
                redis.Redis.from_url(BENCH_BROKER_URL).flushdb()
            proc = _start_uvicorn(code, env, port, workers, tmp)
            base = f"http://127.0.0.1:{port}"
            figures: dict[str, float | str] = {}
            figures.update(asyncio.run(_timing(base, run_id)))
            time.sleep(2)
            mails_before = sink.requests
            load = asyncio.run(_throughput(base, run_id, signups, concurrency))
            figures.update(load)
            if dispatch == "celery":  # the web tier alone above; now the workers drain
                drain_start = time.perf_counter()
                stack.enter_context(celery_workers(celery_count, worker_env(
                    url, BENCH_BROKER_URL, sink.url, DIGEST_SECRET_KEY=env["DIGEST_SECRET_KEY"],
                    DIGEST_BASE_URL=env["DIGEST_BASE_URL"], PYTHONPATH=str(code)), tmp))
            after_answers = _wait_recorded(url, run_id, signups, timeout=600)
            if dispatch == "celery":
                drain = time.perf_counter() - drain_start
                figures["workers_recorded_and_mailed_per_second"] = signups / drain
            deadline = time.monotonic() + 120
            while sink.requests - mails_before < signups and time.monotonic() < deadline:
                time.sleep(0.1)
            total = float(load["seconds"]) + after_answers
            figures["recorded_and_mailed_seconds"] = total
            figures["recorded_and_mailed_per_second"] = signups / total
            figures["confirmation_mails_at_sink"] = sink.requests - mails_before
        return figures
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--signups", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32, help="client connections")
    parser.add_argument("--dispatch", choices=["inline", "celery"], default="inline",
                        help="DIGEST_DISPATCH of the server")
    parser.add_argument("--celery-workers", type=int, default=2)
    parser.add_argument("--code", type=Path, default=REPO,
                        help="the checkout whose digest package the server runs")
    args = parser.parse_args()
    figures = run(args.code.resolve(), args.workers, args.signups, args.concurrency,
                  args.dispatch, args.celery_workers)
    for key, value in figures.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    print(f"machine: {os.cpu_count()} cpus, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, uvicorn workers: {args.workers}, "
          f"dispatch: {args.dispatch}")


if __name__ == "__main__":
    main()
