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
   CPU time per sign-up is read from /proc for the uvicorn workers, this client, and the
   whole machine. The client is a minimal HTTP/1.1 writer: httpx costs more CPU per request
   than the server, and on 2 cores that would measure the client.
3. Open loop (``--rate``, 500/s): sign-ups sent at a fixed rate whatever the answers do,
   latency counted from when each was due. With celery: once with the web tier alone, and
   once more with the workers running on the same cores; inline: the whole system.

Everything (PostgreSQL, Redis, uvicorn, the sink and the client) shares one machine.
Needs PostgreSQL and Redis on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from digest.bootstrap import build
from digest.config import SAMPLE_FEED, Settings
from digest.readers import roster
from digest.store import migrate as schema
from digest.store.models import Subscriber

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
from digest.readers.ratelimit import Limit, RateLimiter
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
        roster.add(app, f"known{i}@example.org")
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


class RawClient:
    """A keep-alive HTTP/1.1 connection that only posts JSON sign-ups.

    httpx spends about 3 ms of CPU per request, more than the server does; on a 2-core
    machine that measures the client. This costs a fraction of that.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, address: str, since: float | None = None) -> float:
        """Seconds from ``since`` (default: now) until the answer is read."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        body = json.dumps({"email": address}).encode()
        request = (f"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                   ).encode() + body
        start = time.perf_counter() if since is None else since
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        elapsed = time.perf_counter() - start
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{address}: {head[:40]!r}")
        return elapsed

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _throughput(port: int, run_id: str, signups: int,
                      concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(signups):
        queue.put_nowait(f"load{i}-{run_id}@example.org")

    async def worker() -> None:
        client = RawClient(port)
        try:
            while not queue.empty():
                latencies.append(await client.post(queue.get_nowait()))
        finally:
            client.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"signups": signups, "concurrency": concurrency, "seconds": elapsed,
            "answered_per_second": signups / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


async def _open_loop(port: int, tag: str, signups: int, rate: float) -> dict[str, float]:
    """Sign-ups sent at a fixed ``rate`` whatever the answers do (open loop).

    Latency counts from the moment a request was due, so a server that falls behind is
    charged for the wait (no coordinated omission).
    """
    idle: list[RawClient] = []
    latencies: list[float] = []
    interval = 1 / rate

    async def one(i: int, due: float) -> None:
        client = idle.pop() if idle else RawClient(port)
        latencies.append(await client.post(f"{tag}{i}@example.org", since=due))
        idle.append(client)

    start = time.perf_counter()
    tasks = []
    for i in range(signups):
        due = start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for client in idle:
        client.close()
    latencies.sort()
    return {"open_loop_rate": rate, "open_loop_achieved_per_second": signups / elapsed,
            "open_loop_p50_ms": latencies[len(latencies) // 2] * 1000,
            "open_loop_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "open_loop_connections": len(idle)}


def _cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _machine_busy_seconds() -> float:
    """CPU seconds all processes used (every core), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _wait_recorded(database_url: str, run_id: str, expected: int, timeout: float) -> float:
    """Seconds until ``expected`` sign-ups of this run's load phases are in the database."""
    engine = create_engine(database_url)
    start = time.perf_counter()
    try:
        while time.perf_counter() - start < timeout:
            with engine.connect() as conn:
                done = conn.scalar(select(func.count()).select_from(Subscriber).where(
                    Subscriber.email.like(f"load%-{run_id}@example.org")
                    | Subscriber.email.like(f"rate%-{run_id}-%@example.org")))
            if done is not None and done >= expected:
                break
            time.sleep(0.1)
        return time.perf_counter() - start
    finally:
        engine.dispose()


def run(code: Path, workers: int, signups: int, concurrency: int, dispatch: str,
        celery_count: int, rate: float) -> dict[str, float | str]:
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
            servers = _children(proc.pid)
            cpu0 = (_cpu_seconds(servers), time.process_time(), _machine_busy_seconds())
            load = asyncio.run(_throughput(port, run_id, signups, concurrency))
            cpu1 = (_cpu_seconds(servers), time.process_time(), _machine_busy_seconds())
            figures.update(load)
            for label, before, after in zip(("uvicorn_workers", "client_process", "machine"),
                                            cpu0, cpu1, strict=True):
                figures[f"cpu_ms_per_signup_{label}"] = (after - before) / signups * 1000

            if dispatch == "celery":
                if rate:  # the web tier alone, at a fixed rate, while nothing else runs
                    time.sleep(2)
                    web_only = asyncio.run(_open_loop(port, f"rate-{run_id}-a", signups, rate))
                    figures.update({f"web_only_{k}": v for k, v in web_only.items()})
                queued = signups * (2 if rate else 1)
                drain_start = time.perf_counter()
                stack.enter_context(celery_workers(celery_count, worker_env(
                    url, BENCH_BROKER_URL, sink.url, DIGEST_SECRET_KEY=env["DIGEST_SECRET_KEY"],
                    DIGEST_BASE_URL=env["DIGEST_BASE_URL"], PYTHONPATH=str(code)), tmp))
                _wait_recorded(url, run_id, queued, timeout=900)
                drain = time.perf_counter() - drain_start
                figures["workers_recorded_and_mailed_per_second"] = queued / drain
            else:
                after_answers = _wait_recorded(url, run_id, signups, timeout=900)
                total = float(load["seconds"]) + after_answers
                figures["recorded_and_mailed_seconds"] = total
                figures["recorded_and_mailed_per_second"] = signups / total
                queued = signups
            deadline = time.monotonic() + 120
            while sink.requests - mails_before < queued and time.monotonic() < deadline:
                time.sleep(0.1)
            figures["confirmation_mails_at_sink"] = sink.requests - mails_before
            if rate:  # last, with everything running (the workers too, with celery)
                time.sleep(2)
                figures.update(asyncio.run(_open_loop(port, f"rate-{run_id}-b", signups, rate)))
                deadline = time.monotonic() + 300  # its mails reach the sink before it stops
                while (sink.requests - mails_before < queued + signups
                       and time.monotonic() < deadline):
                    time.sleep(0.1)
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
    parser.add_argument("--rate", type=float, default=500,
                        help="sign-ups per second of the open-loop phase (0: skip it)")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="the checkout whose digest package the server runs")
    args = parser.parse_args()
    figures = run(args.code.resolve(), args.workers, args.signups, args.concurrency,
                  args.dispatch, args.celery_workers, args.rate)
    for key, value in figures.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")
    print(f"machine: {os.cpu_count()} cpus, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, uvicorn workers: {args.workers}, "
          f"dispatch: {args.dispatch}")


if __name__ == "__main__":
    main()
