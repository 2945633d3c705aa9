"""Outbound HTTP to addresses a feed chose: refuse the operator's own network (SSRF).

A feed (its URL, a redirect, its WebSub hub) is hostile input: it must not make this service
request ``http://127.0.0.1:6379/``, the cloud metadata address or a router's admin page. The
check lives in the *network backend* of the httpx transport, the one place that opens sockets:
it resolves the host name once, refuses the connection when ANY resolved address is not
public, then connects to the checked address itself, so a DNS answer that changes between
the check and the connect (rebinding) cannot swap it, and every hop of a redirect and every
hub is checked the same way. TLS still verifies the certificate against the host name.
The operator may allow hosts, addresses or networks with ``DIGEST_FETCH_ALLOW_PRIVATE``.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import certifi
import httpcore
import httpx
from httpcore._backends.sync import SyncBackend

__all__ = ["AddressPolicy", "AddressRefused", "guarded_client", "is_public"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """A connection to a non-public address was refused before it was opened."""

    def __init__(self, host: str, address: str, kind: str) -> None:
        shown = host if host == address else f"{host} ({address})"
        super().__init__(
            f"refused to connect to {shown}: a {kind} address, not a public one; if this "
            "feed really lives on your network, add it to DIGEST_FETCH_ALLOW_PRIVATE"
        )
        self.host = host
        self.address = address


def _embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped ::ffff:a.b.c.d, 6to4, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def non_public_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (e.g. "loopback"), or None if it is."""
    inner = _embedded_v4(ip)
    if inner is not None:
        return non_public_kind(inner)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def is_public(address: str) -> bool:
    """True for a public unicast IP address (IPv4 or IPv6, embedded IPv4 unwrapped)."""
    return non_public_kind(ipaddress.ip_address(address.split("%", 1)[0])) is None


@dataclass(frozen=True)
class AddressPolicy:
    """Which non-public destinations the operator allows (hosts by name, IPs, networks)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_setting(cls, entries: Iterable[str]) -> AddressPolicy:
        """Parse ``DIGEST_FETCH_ALLOW_PRIVATE`` entries; raises ValueError on a bad one."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().strip("[]").lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or not all(part for part in entry.split(".")):
                raise ValueError(f"{raw!r} is not a host name, an IP address or a CIDR network")
            hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def refusal(self, host: str, address: str) -> AddressRefused | None:
        """The refusal for connecting to ``address`` (resolved from ``host``), or None."""
        if host.strip("[]").lower().rstrip(".") in self.hosts:
            return None
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        kind = non_public_kind(ip)
        if kind is None:
            return None
        candidates = [ip] + [v4 for v4 in [_embedded_v4(ip)] if v4 is not None]
        if any(c in net for c in candidates for net in self.networks if c.version == net.version):
            return None
        return AddressRefused(host, str(ip), kind)


def _resolve(host: str, port: int) -> list[tuple[int, str]]:
    """Every (family, address) ``host`` resolves to, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    seen: list[tuple[int, str]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        item = (int(family), str(sockaddr[0]))
        if family in (socket.AF_INET, socket.AF_INET6) and item not in seen:
            seen.append(item)
    if not seen:
        raise httpcore.ConnectError(f"{host} has no IPv4 or IPv6 address")
    return seen


class _GuardedBackend(SyncBackend):
    """Resolve once, check every address, connect only to a checked one."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        for _family, address in addresses:  # any bad answer taints the name
            refused = self._policy.refusal(host, address)
            if refused is not None:
                raise refused
        last: Exception | None = None
        for _family, address in addresses:
            try:
                stream = super().connect_tcp(address, port, timeout, local_address,
                                             socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            self._confirm_peer(host, address, stream)
            return stream
        assert last is not None
        raise last

    @staticmethod
    def _confirm_peer(host: str, address: str, stream: httpcore.NetworkStream) -> None:
        """Belt and braces: the socket's peer is the very address that was checked."""
        peer = stream.get_extra_info("server_addr")
        actual = str(peer[0]).split("%", 1)[0] if peer else "unknown"
        if actual == "unknown" or ipaddress.ip_address(actual) != ipaddress.ip_address(
            address.split("%", 1)[0]
        ):
            stream.close()
            raise AddressRefused(host, actual, "unchecked")


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, with its connection pool opening sockets through the guard."""

    def __init__(self, policy: AddressPolicy) -> None:
        context = ssl.create_default_context(cafile=certifi.where())
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=_GuardedBackend(policy)
        )


def guarded_client(policy: AddressPolicy, **options: typing.Any) -> httpx.Client:
    """An httpx client that can only reach public addresses (or what ``policy`` allows).

    No environment proxy is used: through a proxy the address could not be checked.
    """
    return httpx.Client(transport=_GuardedTransport(policy), trust_env=False, **options)
