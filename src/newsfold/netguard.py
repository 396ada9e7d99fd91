"""The private-address guard: newsfold only connects to public addresses unless told otherwise.

The check sits where the connection is made, inside httpcore's network backend: the host name is
resolved once, every address it resolves to is checked, and the socket is opened to one of those
same addresses. A name that answers with a public address to a first lookup and with 127.0.0.1 to
a second (DNS rebinding) gains nothing, because there is no second lookup. Every redirect hop opens
its connection through the same backend, so every hop is checked too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Checked in this order, so the message names the most telling category (127.0.0.1 is also
# "private" to the ipaddress module, 169.254.169.254 too).
_CATEGORIES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("a loopback", lambda ip: ip.is_loopback),
    ("an unspecified", lambda ip: ip.is_unspecified),
    ("a link-local", lambda ip: ip.is_link_local),
    ("a multicast", lambda ip: ip.is_multicast),
    ("a reserved", lambda ip: ip.is_reserved),
    ("a private", lambda ip: ip.is_private),
    ("a non-public", lambda ip: not ip.is_global),
)


class AddressRefused(Exception):
    """A host resolved to an address that may not be fetched."""

    def __init__(self, host: str, address: IPAddress, category: str) -> None:
        if host.strip("[]") == str(address):
            message = f"{address} is {category}"
        else:
            message = f"{host} resolves to {address}, {category}"
        super().__init__(message)
        self.host = host
        self.address = address


def parse_address(address: str) -> IPAddress:
    """An IP address, IPv6 zone dropped and IPv4-mapped IPv6 unwrapped to the IPv4 it carries."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def refused_category(ip: IPAddress) -> str | None:
    """Why `ip` may not be fetched ("a private address"), or None when it is public."""
    for label, applies in _CATEGORIES:
        if applies(ip):
            return f"{label} address"
    return None


def parse_network(network: str) -> IPNetwork:
    """A CIDR range ("10.1.0.0/16"), or one address as a range of one."""
    return ipaddress.ip_network(network.strip(), strict=False)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, refuses non-public addresses, then connects to an address it checked."""

    def __init__(
        self, allow: Iterable[str] = (), connect_with: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        """`allow`: CIDR ranges (or single addresses) let through although not public."""
        self._inner = connect_with or httpcore.AnyIOBackend()
        self._allow = tuple(parse_network(network) for network in allow)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.checked_addresses(host, port)
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # getaddrinfo never returns an empty list
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    async def checked_addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, or AddressRefused if any one of them is refused."""
        addresses = await resolve(host, port)
        for address in addresses:
            ip = parse_address(address)
            category = refused_category(ip)
            if category is not None and not any(ip in network for network in self._allow):
                raise AddressRefused(host, ip, category)
        return addresses


async def resolve(host: str, port: int) -> list[str]:
    """The host's addresses in the resolver's order; a failed lookup is a ConnectError."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"{exc.strerror} ({host})") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def guarded_transport(
    limits: httpx.Limits,
    *,
    allow: Iterable[str] = (),
    connect_with: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, with connections opened only to checked addresses.

    `allow` names ranges let through anyway (fetch.allowed_networks), `connect_with` is the
    backend that opens the sockets once an address passed (anyio's by default); tests use both to
    reach the loopback server while making sure nothing else is ever dialled.
    """
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    # httpx has no public way to choose httpcore's network backend, so the connection pool is
    # rebuilt with the same settings around the guarded backend.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(allow, connect_with),
    )
    return transport
