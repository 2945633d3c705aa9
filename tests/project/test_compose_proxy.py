"""docker-compose.yml: the web app believes X-Forwarded-For from the compose network only."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml

from digest.config import Settings

REPO = Path(__file__).resolve().parents[2]


def test_web_trusts_the_compose_network_and_is_published_locally() -> None:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    web = doc["services"]["web"]
    value = web["environment"]["DIGEST_TRUSTED_PROXIES"]
    default = value.removeprefix("${DIGEST_TRUSTED_PROXIES:-").removesuffix("}")
    trusted = Settings(_env_file=None, trusted_proxies=default).trusted_proxies  # type: ignore[call-arg]
    subnets = [ipaddress.ip_network(c["subnet"])
               for c in doc["networks"]["default"]["ipam"]["config"]]
    assert subnets and all(
        any(net.subnet_of(ipaddress.ip_network(t)) for t in trusted) for net in subnets)
    # Published on the host's loopback: visitors reach it only through the host's proxy.
    assert all(str(port).startswith(("127.0.0.1:", "${DIGEST_WEB_PUBLISH:-127.0.0.1:"))
               for port in web["ports"])
    # The web service still has every shared setting (YAML merge keys are shallow).
    assert web["environment"]["DIGEST_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "DIGEST_TRUSTED_PROXIES" not in doc["services"]["worker"]["environment"]
