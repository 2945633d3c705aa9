"""Which addresses a feed may make us connect to, and how the operator widens that."""

from __future__ import annotations

import pytest

from digest.config import load_settings
from digest.errors import ConfigError
from digest.feeds.address_policy import AddressPolicy, is_public

NON_PUBLIC = [
    "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1",
    "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "239.255.255.250",
    "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "2002:7f00:1::1", "2002:a00:1::1",  # 6to4 wrapping 127.0.0.1 and 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 wrapping 127.0.0.1
    "::127.0.0.1",  # IPv4-compatible (deprecated)
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
          "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public(address)
    refused = AddressPolicy().refusal("feed.example", address)
    assert refused is not None and "DIGEST_FETCH_ALLOW_PRIVATE" in str(refused)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(address) and AddressPolicy().refusal("feed.example", address) is None


def test_the_operator_allows_hosts_ips_and_networks() -> None:
    policy = AddressPolicy.from_setting(["10.0.0.0/8", "127.0.0.1", "Feeds.Internal.", "[::1]"])
    assert policy.refusal("x", "10.9.8.7") is None
    assert policy.refusal("x", "::ffff:10.9.8.7") is None  # the same address, mapped
    assert policy.refusal("x", "127.0.0.1") is None and policy.refusal("x", "::1") is None
    assert policy.refusal("x", "127.0.0.2") is not None
    assert policy.refusal("x", "192.168.0.1") is not None
    assert policy.refusal("feeds.internal", "192.168.0.1") is None


def test_the_setting_is_a_comma_separated_list_and_a_bad_entry_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIGEST_FETCH_ALLOW_PRIVATE", "127.0.0.1, 10.0.0.0/8 ,feeds.internal")
    settings = load_settings(_env_file=None)
    assert settings.fetch_allow_private == ["127.0.0.1", "10.0.0.0/8", "feeds.internal"]
    monkeypatch.delenv("DIGEST_FETCH_ALLOW_PRIVATE")
    assert load_settings(_env_file=None).fetch_allow_private == []
    monkeypatch.setenv("DIGEST_FETCH_ALLOW_PRIVATE", "10.0.0.0/33")
    with pytest.raises(ConfigError, match=r"DIGEST_FETCH_ALLOW_PRIVATE.*10\.0\.0\.0/33"):
        load_settings(_env_file=None)
