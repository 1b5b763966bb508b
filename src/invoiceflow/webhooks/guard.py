"""Where a webhook may point: the SSRF guard.

A webhook makes this server send requests to a URL a tenant chose, so a URL naming this machine, the
internal network or a cloud metadata service (169.254.169.254) would let a tenant probe or call them.
Unless private networks are allowed (tests, a receiver next to an embedded install), a URL is refused
when its host is, or resolves to, an address that is not globally routable: loopback, private, shared
(100.64/10), link-local, multicast, reserved, unspecified, documentation, or an IPv4 address hidden in
IPv6 (::ffff:127.0.0.1).

Checked twice: when an endpoint is saved (to tell the user early; a name that does not resolve yet is
accepted) and at every delivery, because DNS can change. At delivery the request goes to the address
that was checked (the name is kept in the Host header and for TLS): a second lookup by the HTTP client
could otherwise answer differently (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass

import httpx

MAX_URL_LENGTH = 2000
DNS_TIMEOUT_SECONDS = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """The URL may not be used; the message says why, in words for the user."""


class HostUnresolved(OSError):
    """The host name has no address (now): not a refusal, the lookup may succeed later."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: httpx.URL
    address: IPAddress


def is_forbidden_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None and is_forbidden_address(embedded):
            return True
    # `is_global` is False for every special-purpose range of the IANA registries, but True for multicast.
    return not address.is_global or address.is_multicast


def parse_url(raw: str, *, allow_private: bool) -> httpx.URL:
    """The URL's shape: https (http only where private networks are allowed), a host, no credentials."""
    if len(raw) > MAX_URL_LENGTH:
        raise UrlRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        raise UrlRefused("must not contain spaces or control characters")
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError):
        raise UrlRefused("not a valid URL") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if url.scheme not in allowed:
        raise UrlRefused("must be an https:// URL" if not allow_private else "must be an http(s):// URL")
    if not url.host:
        raise UrlRefused("must name a host")
    if url.userinfo:
        raise UrlRefused("must not contain credentials; the signature authenticates deliveries")
    if url.fragment:
        raise UrlRefused("must not contain a fragment")
    literal = _literal(url.host)
    if literal is not None and not allow_private and is_forbidden_address(literal):
        raise UrlRefused("points at a private, loopback, link-local or otherwise non-public address")
    return url


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve(url: httpx.URL, *, allow_private: bool) -> Target:
    """The address to deliver to. Every address the name resolves to must be allowed, not only the first:
    a name that also resolves to an internal address is refused."""
    host = url.host
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, url.port or (443 if url.scheme == "https" else 80), type=socket.SOCK_STREAM),
                DNS_TIMEOUT_SECONDS,
            )
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise HostUnresolved(f"could not resolve {host}: {exc or 'timed out'}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise HostUnresolved(f"could not resolve {host}")
    if not allow_private:
        for address in addresses:
            if is_forbidden_address(address):
                raise UrlRefused(f"{host} resolves to a non-public address ({address})")
    return Target(url=url, address=addresses[0])


async def check_url(raw: str, *, allow_private: bool) -> str:
    """The save-time check: raises UrlRefused; a name that does not resolve (yet) passes."""
    url = parse_url(raw, allow_private=allow_private)
    with contextlib.suppress(HostUnresolved):
        await resolve(url, allow_private=allow_private)
    return raw
