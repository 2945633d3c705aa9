"""Compression bombs: the decoded size is capped while streaming, whatever the encodings.

``Content-Encoding: gzip, gzip`` over 1 GiB of zeros is under 2 KB on the wire. Each poll runs
in its own process so that its peak memory (ru_maxrss) can be compared with a normal poll's.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.feedserver import FeedServer, Item, wordpress_feed

REPO = Path(__file__).resolve().parents[2]
GIB = 2**30
HEADROOM = 50 * 2**20  # what a bomb may cost over a normal poll

POLL = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))  # a regression fails, not the host
from digest.store import migrate as schema
from digest.config import Settings
from digest.feeds.poll import poll_feed_url
from digest.bootstrap import build
url, db = sys.argv[1], sys.argv[2]
settings = Settings(_env_file=None, database_url=f"sqlite:///{db}",
                    fetch_allow_private=["127.0.0.1"], outbox_dir=db + ".outbox")
app = build(settings)
schema.upgrade(app.engine)
report = poll_feed_url(app, url)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"outcome": report.outcome, "error": report.error, "peak": peak}))
"""


def _gzip_of_zeros(size: int) -> bytes:
    """gzip of ``size`` zero bytes, built without ever holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(2**20)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + packer.flush()


@pytest.fixture(scope="module")
def inner() -> bytes:
    return _gzip_of_zeros(GIB)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as running:
        yield running


def _poll_in_a_process(url: str, tmp_path: Path, name: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", POLL, url, str(tmp_path / f"{name}.db")],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("encoding", "wrap"),
    [
        ("gzip", lambda inner: inner),
        ("gzip, gzip", lambda inner: gzip.compress(inner, 9)),
        ("gzip, deflate", lambda inner: zlib.compress(inner, 9)),
        ("gzip, gzip, gzip", lambda inner: gzip.compress(gzip.compress(inner, 9), 9)),
    ],
)
def test_a_bomb_is_stopped_at_the_cap_within_50_mb_of_a_normal_poll(
    server: FeedServer, tmp_path: Path, inner: bytes, encoding: str, wrap: object
) -> None:
    body = wrap(inner)  # type: ignore[operator]
    if encoding == "gzip, gzip":
        assert len(body) < 2048  # the bomb: under 2 KB on the wire
    normal = wordpress_feed([Item(i, f"Post {i}", 1_700_000_000 + i, content="<p>words</p>" * 400)
                             for i in range(10)])
    server.set("/normal/", gzip.compress(normal), headers={"Content-Encoding": "gzip"})
    server.set("/bomb/", body, conditional=False, headers={"Content-Encoding": encoding})

    baseline = _poll_in_a_process(server.url("/normal/"), tmp_path, "normal")
    bomb = _poll_in_a_process(server.url("/bomb/"), tmp_path, "bomb")

    assert baseline["outcome"] == "new"
    assert bomb["outcome"] == "failed" and "byte cap" in str(bomb["error"])
    extra = int(bomb["peak"]) - int(baseline["peak"])  # type: ignore[call-overload]
    print(f"{encoding}: normal peak {int(baseline['peak']) >> 20} MiB, "  # type: ignore[call-overload]
          f"bomb peak {int(bomb['peak']) >> 20} MiB")  # type: ignore[call-overload]
    assert extra < HEADROOM, f"the bomb cost {extra >> 20} MiB more than a normal poll"


def test_an_unknown_encoding_is_refused_not_passed_on(server: FeedServer, tmp_path: Path) -> None:
    server.set("/feed/", b"\x00" * 100, conditional=False, headers={"Content-Encoding": "zz"})
    result = _poll_in_a_process(server.url("/feed/"), tmp_path, "odd")
    assert result["outcome"] == "failed" and "Content-Encoding" in str(result["error"])
