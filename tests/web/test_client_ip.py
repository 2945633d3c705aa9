"""The client's address: X-Forwarded-For counts only from DIGEST_TRUSTED_PROXIES."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from digest.config import Settings, load_settings
from digest.errors import ConfigError
from digest.web.deps import client_ip
from tests.conftest import make_settings


def _request(peer: str | None, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    scope = {"type": "http", "method": "POST", "path": "/subscribe", "headers": headers,
             "client": (peer, 4711) if peer is not None else None}
    return Request(scope)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path, trusted_proxies="172.16.0.0/12, 127.0.0.1")


def test_forwarded_for_is_ignored_without_trusted_proxies(tmp_path) -> None:
    plain = make_settings(tmp_path)
    assert plain.trusted_proxies == []
    assert client_ip(_request("127.0.0.1", "198.51.100.7"), plain) == "127.0.0.1"
    assert client_ip(_request("203.0.113.9", "198.51.100.7"), plain) == "203.0.113.9"


def test_only_a_trusted_peer_may_name_the_client(settings) -> None:
    assert client_ip(_request("172.18.0.5", "198.51.100.7"), settings) == "198.51.100.7"
    assert client_ip(_request("203.0.113.9", "198.51.100.7"), settings) == "203.0.113.9"


def test_the_right_most_untrusted_address_wins(settings) -> None:
    # The visitor wrote "1.1.1.1" themselves; the proxy appended what it saw.
    assert client_ip(_request("172.18.0.5", "1.1.1.1, 198.51.100.7, 172.18.0.9"),
                     settings) == "198.51.100.7"
    assert client_ip(_request("172.18.0.5", "1.1.1.1", "198.51.100.7"),
                     settings) == "198.51.100.7"  # several header lines count as one list
    assert client_ip(_request("127.0.0.1", "2001:db8::1"), settings) == "2001:db8::1"
    assert client_ip(_request("172.18.0.5", "172.18.0.7"), settings) == "172.18.0.7"


@pytest.mark.parametrize("junk", ["", "unknown", "<script>", "1.2.3.4.5", "x" * 100_000,
                                  "198.51.100.7, not-an-ip", "1.1.1.1,, ", "999.1.1.1"])
def test_malformed_values_never_become_the_address(settings, junk) -> None:
    ip = client_ip(_request("172.18.0.5", junk), settings)
    assert ip in ("172.18.0.5", "1.1.1.1", "198.51.100.7")
    assert ip != "198.51.100.7" or not junk.endswith("not-an-ip")  # never past a bad hop


def test_a_peer_that_is_not_an_address_gives_none(settings) -> None:
    assert client_ip(_request("testclient"), settings) is None
    assert client_ip(_request(None), settings) is None


def test_a_bad_trusted_proxies_entry_is_named(monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_TRUSTED_PROXIES", "10.0.0.0/8, not-a-network")
    with pytest.raises(ConfigError, match=r"DIGEST_TRUSTED_PROXIES.*'not-a-network'"):
        load_settings(_env_file=None)
