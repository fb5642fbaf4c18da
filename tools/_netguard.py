"""Which addresses a page fetch may connect to, and resolving a host to one checked address.

The fetcher (:mod:`tools._fetch`) asks :func:`checked_addresses` for the addresses of every URL it is
about to request (the first one and each redirect target) and then connects to *those addresses*, so
what was checked is what is connected to: a DNS answer that changes between the check and the connection
(rebinding) cannot move the request somewhere else.

An address is refused unless it is globally routable: loopback, private (RFC 1918), shared CGNAT
(100.64.0.0/10), link-local (169.254.0.0/16, where cloud metadata services answer), multicast,
unspecified, reserved and documentation ranges, and their IPv6 counterparts (``::1``, ``fc00::/7``,
``fe80::/10``, deprecated site-local ``fec0::/10``) are all refused. An IPv6 address that carries an
IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged by
the IPv4 address it reaches.

A host is a name or an address literal in any spelling the C library accepts: ``2130706433``,
``0x7f000001``, ``0177.0.0.1`` and ``127.1`` all mean 127.0.0.1 to ``getaddrinfo``, so they are read
the same way here (with :func:`socket.inet_aton`) and checked without asking a resolver.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence

from tools._exceptions import FetchBlockedError, FetchError, ToolsUsageError

__all__ = [
    "NAT64_PREFIXES",
    "IPAddress",
    "IPNetwork",
    "Resolver",
    "blocked_reason",
    "checked_addresses",
    "literal_address",
    "parse_networks",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A host name -> its addresses (strings or ``ipaddress`` objects); plain or async.
Resolver = Callable[[str], Awaitable[Iterable[str | IPAddress]] | Iterable[str | IPAddress]]

#: IPv6 prefixes whose last 32 bits are an IPv4 address reached through a NAT64 gateway (RFC 6052
#: well-known prefix and RFC 8215 local-use prefix).
NAT64_PREFIXES: tuple[ipaddress.IPv6Network, ...] = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)

_SHARED_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# What inet_aton can read as an address: digits, hex digits, 0x prefixes and dots. Anything else is a
# name (this also keeps out the trailing garbage glibc's inet_aton would ignore).
_INET_ATON_SPELLING = re.compile(r"[0-9a-fA-FxX.]+")


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells (``[::1]``, ``127.0.0.1``, ``2130706433``, ``0x7f.1``…), or None for a name."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        pass
    spelling = host.removesuffix(".")  # a fully qualified "127.0.0.1." is still that address
    if not _INET_ATON_SPELLING.fullmatch(spelling):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(spelling))
    except OSError:
        return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why a fetch may not connect to ``address`` (e.g. ``"loopback address 127.0.0.1"``), or None if it may."""
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_reason(address)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = _ipv4_reason(embedded)
        return None if reason is None else f"{address} reaches {reason}"
    return _ipv6_reason(address)


def _ipv4_reason(address: ipaddress.IPv4Address) -> str | None:
    if address.is_unspecified:
        kind = "unspecified"
    elif address.is_loopback:
        kind = "loopback"
    elif address.is_link_local:
        kind = "link-local (cloud metadata)"
    elif address.is_multicast:
        kind = "multicast"
    elif address in _SHARED_CGNAT:
        kind = "shared (CGNAT)"
    elif address.is_reserved:
        kind = "reserved"
    elif address.is_private:
        kind = "private or special-purpose"
    elif not address.is_global:
        kind = "non-public"
    else:
        return None
    return f"{kind} address {address}"


def _ipv6_reason(address: ipaddress.IPv6Address) -> str | None:
    if address.is_unspecified:
        kind = "unspecified"
    elif address.is_loopback:
        kind = "loopback"
    elif address.is_link_local:
        kind = "link-local"
    elif address.is_site_local:
        kind = "site-local"
    elif address.is_multicast:
        kind = "multicast"
    elif address.is_private:
        kind = "private or special-purpose"
    elif address.is_reserved:
        kind = "reserved"
    elif not address.is_global:
        kind = "non-public"
    else:
        return None
    return f"{kind} address {address}"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 or 6to4 address reaches, else None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in prefix for prefix in NAT64_PREFIXES):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def parse_networks(networks: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """``allowed_networks=`` as network objects; a clear error naming the parameter for a bad entry."""
    if isinstance(networks, str):
        raise ToolsUsageError("allowed_networks must be a collection of networks, not one string")
    parsed: list[IPNetwork] = []
    for network in networks:
        try:
            parsed.append(ipaddress.ip_network(network))
        except (TypeError, ValueError) as error:
            raise ToolsUsageError(f"allowed_networks: {network!r} is not an IP network ({error})") from None
    return tuple(parsed)


async def system_resolver(host: str) -> list[str]:
    """The default resolver: the operating system's ``getaddrinfo``, run off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def checked_addresses(
    url: str, host: str, resolver: Resolver, allowed: Sequence[IPNetwork]
) -> list[IPAddress]:
    """The addresses a fetch may connect to for ``host``, in the resolver's order, without repeats.

    A literal address is checked as it is; a name is resolved, and every one of its addresses must be
    allowed (public, or inside ``allowed``): one bad record refuses the host, rather than trusting
    that a connection will never be made to it. ``url`` is what errors name.
    """
    literal = literal_address(host)
    addresses = [literal] if literal is not None else await _resolve(url, host, resolver)
    for address in addresses:
        reason = None if any(address in network for network in allowed) else blocked_reason(address)
        if reason is not None:
            shown = "" if literal is not None else f"{host} resolves to "
            raise FetchBlockedError(url, f"{shown}{reason}")
    return list(dict.fromkeys(addresses))


async def _resolve(url: str, host: str, resolver: Resolver) -> list[IPAddress]:
    try:
        answer = resolver(host)
        records = list(await answer if inspect.isawaitable(answer) else answer)
    except OSError as error:  # socket.gaierror and friends: the name does not resolve
        raise FetchError(url, f"cannot resolve {host}: {error}") from error
    if not records:
        raise FetchError(url, f"{host} has no addresses")
    return [_as_address(url, host, record) for record in records]


def _as_address(url: str, host: str, record: str | IPAddress) -> IPAddress:
    if isinstance(record, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return record
    try:
        return ipaddress.ip_address(str(record).split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        raise FetchBlockedError(url, f"the resolver answered {record!r} for {host}, not an address") from None
