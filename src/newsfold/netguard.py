"""The private-address guard: newsfold only connects to public addresses unless told otherwise.

The check sits where connections are made, in aiohttp's connector (fetch.py speaks httpx's API
over the aiohttp transport of httpx-aiohttp): a host name is resolved once, by GuardedResolver,
every address it resolves to is checked, and the connector opens its socket to one of those same
addresses. A name that answers with a public address to a first lookup and with 127.0.0.1 to a
second (DNS rebinding) gains nothing, because there is no second lookup. The socket factory checks
the address once more as the socket is made; that also covers URLs that name an address, which
are never looked up. Every redirect hop opens its connection through the same connector, so every
hop is checked too.

fetch.allow_private_networks lets loopback and private ranges through (an intranet feed), never
link-local ranges nor the cloud metadata services: those hand out the machine's credentials, and
only a range named in fetch.allowed_networks reaches them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx_aiohttp import AiohttpTransport

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# getaddrinfo's 5-tuple for one address: (family, type, proto, canonname, sockaddr)
AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
SocketFactory = Callable[[AddrInfo], socket.socket]

# Instance metadata services outside the link-local ranges (169.254.169.254 and 169.254.170.2 are
# link-local already): AWS and Google Cloud over IPv6, Alibaba Cloud, Oracle Cloud.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(address)
    for address in ("fd00:ec2::254", "fd20:ce::254", "100.100.100.200", "192.0.0.192")
)
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052).
_NAT64_PREFIXES = (ipaddress.ip_network("64:ff9b::/96"),)

# Checked in this order, so the message names the most telling category (127.0.0.1 is also
# "private" to the ipaddress module, 169.254.169.254 too).
_CATEGORIES: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("a loopback", lambda ip: ip.is_loopback),
    ("an unspecified", lambda ip: ip.is_unspecified),
    ("a link-local", lambda ip: ip.is_link_local),
    ("a cloud metadata", lambda ip: ip in METADATA_ADDRESSES),
    ("a multicast", lambda ip: ip.is_multicast),
    ("a reserved", lambda ip: ip.is_reserved),
    ("a private", lambda ip: ip.is_private),
    ("a non-public", lambda ip: not ip.is_global),
)
# What stays refused when private networks are allowed.
_ALWAYS_REFUSED = frozenset({"a link-local", "a cloud metadata"})


class AddressRefused(Exception):
    """A host resolved to an address that may not be fetched."""

    def __init__(
        self, host: str, address: IPAddress, category: str, *, explained: bool = False
    ) -> None:
        """`explained`: the message ends with `remedy`, the setting that lets it through."""
        if host.strip("[]") == str(address):
            message = f"{address} is {category}"
        else:
            message = f"{host} resolves to {address}, {category}"
        self.remedy = _how_to_allow(address)
        super().__init__(f"{message} ({self.remedy})" if explained else message)
        self.explained = explained
        self.host = host
        self.address = address


def _how_to_allow(ip: IPAddress) -> str:
    """The setting that lets a refused address through, for a user who means to fetch it:
    link-local and cloud metadata addresses pass only when named in fetch.allowed_networks."""
    if refused_category(ip, private_allowed=True) is None:
        return (
            "to allow it: fetch.allow_private_networks = true,"
            " or its range in fetch.allowed_networks"
        )
    return "allowed only through fetch.allowed_networks"


def parse_address(address: str) -> IPAddress:
    """An IP address, IPv6 zone dropped, and an IPv6 address that carries an IPv4 one
    (IPv4-mapped, 6to4, NAT64) unwrapped to the IPv4 it reaches."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not isinstance(ip, ipaddress.IPv6Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in prefix for prefix in _NAT64_PREFIXES):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def refused_category(ip: IPAddress, *, private_allowed: bool = False) -> str | None:
    """Why `ip` may not be fetched ("a private address"), or None when it may.

    `private_allowed` (fetch.allow_private_networks) lets everything through but link-local and
    cloud metadata addresses."""
    for label, applies in _CATEGORIES:
        if applies(ip):
            if private_allowed and label not in _ALWAYS_REFUSED:
                return None
            return f"{label} address"
    return None


def parse_network(network: str) -> IPNetwork:
    """A CIDR range ("10.1.0.0/16"), or one address as a range of one."""
    return ipaddress.ip_network(network.strip(), strict=False)


class AddressGuard:
    """Refuses non-public addresses, except those within the `allow` ranges."""

    def __init__(self, allow: Iterable[str] = (), *, private_allowed: bool = False) -> None:
        """`allow`: CIDR ranges (or single addresses) let through although not public;
        `private_allowed`: every range but link-local and cloud metadata let through."""
        self._allow = tuple(parse_network(network) for network in allow)
        self._private_allowed = private_allowed

    def check(self, host: str, address: str) -> None:
        """AddressRefused when `host`'s `address` may not be fetched."""
        ip = parse_address(address)
        category = refused_category(ip, private_allowed=self._private_allowed)
        if category is not None and not any(ip in network for network in self._allow):
            raise AddressRefused(host, ip, category, explained=self._private_allowed)

    async def checked_addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, or AddressRefused if any one of them is refused."""
        addresses = [address for _, address in await lookup(host, port)]
        for address in addresses:
            self.check(host, address)
        return addresses


async def lookup(host: str, port: int, family: int = socket.AF_UNSPEC) -> list[tuple[int, str]]:
    """(family, address) of each address of `host`, in the resolver's order, once each.

    A failed lookup raises socket.gaierror, which aiohttp reports as a DNS failure."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, family=family
    )
    return list(dict.fromkeys((info[0], str(info[4][0])) for info in infos))


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver: one lookup per name, refused as a whole if any address is refused."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await lookup(host, port, family)
        for _, address in found:
            self._guard.check(host, address)
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(hostname=host, host=address, port=port, family=kind, proto=0, flags=flags)
            for kind, address in found
        ]

    async def close(self) -> None:
        return None


def plain_socket(addr_info: AddrInfo) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    return socket.socket(family=family, type=kind, proto=proto)


def guarded_transport(
    limits: httpx.Limits,
    *,
    allow: Iterable[str] = (),
    private_allowed: bool = False,
    connect_with: SocketFactory = plain_socket,
) -> httpx.AsyncBaseTransport:
    """httpx's API on aiohttp's transport, with connections opened only to checked addresses.

    `allow` names ranges let through anyway (fetch.allowed_networks), `private_allowed` lets
    private ones through but link-local and metadata (fetch.allow_private_networks),
    `connect_with` makes the socket once its address passed; tests use them to reach the
    loopback server while making sure nothing else is ever dialled.
    """
    guard = AddressGuard(allow, private_allowed=private_allowed)

    def checked_socket(addr_info: AddrInfo) -> socket.socket:
        address = str(addr_info[4][0])
        guard.check(address, address)
        return connect_with(addr_info)

    return aiohttp_transport(limits, GuardedResolver(guard), checked_socket)


def aiohttp_transport(
    limits: httpx.Limits,
    resolver: AbstractResolver | None = None,
    socket_factory: SocketFactory | None = None,
) -> httpx.AsyncBaseTransport:
    """The transport for httpx.AsyncClient: aiohttp underneath, httpx's API above.

    httpx's own transport costs several times aiohttp's CPU per request (its connection pool's
    bookkeeping); keeping httpx above keeps every other line of fetch.py as it is.
    """

    # Loading the CA bundle takes a while: here, not in the first request's time budget.
    ssl_context = httpx.create_ssl_context(trust_env=False)

    def session() -> aiohttp.ClientSession:  # made by the transport inside the event loop
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=ssl_context,
            resolver=resolver,
            socket_factory=socket_factory,
        )
        # httpx keeps the cookies; aiohttp must not keep (and send) them a second time.
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    return AiohttpTransport(limits=limits, client=session)
