"""SSRF guard for every URL the proxy fetches on a caller's behalf (images, shadow result images).

Three layers, one policy (`Guard.address_allowed`):
- `Guard.check_url` judges the URL exactly as aiohttp will use it: parsed by yarl, whose host is
  IDNA/UTS-46 normalised (`１２７.０.０.１`, `127。0。0。1` and `①②⑦.0.0.1` all become `127.0.0.1`). A
  non-ASCII host that normalises to an address is refused outright, and so is a numeric host that is not
  a dotted quad (`2130706433`, `0177.0.0.1`, `0x7f.1`): C resolvers read those as addresses.
- `GuardedResolver` keeps only the allowed addresses a name resolves to, and the connection goes to
  those (so DNS rebinding cannot swap them after the check).
- `guarded_socket`, the connector's socket factory, sees every address a connection is opened to, IP
  literal or resolved name, first hop or redirect: aiohttp skips the resolver for IP literals, so this is
  the layer nothing can go around.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
# IPv6 ranges that carry an IPv4 address the network may translate to (the metadata address too):
# NAT64 (well-known and local-use), 6to4, Teredo and the deprecated IPv4-compatible ::a.b.c.d.
EMBEDS_IPV4 = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32",
                                                 "::/96")]
RESOLVED_TTL = 10.0  # seconds a judged resolution is reused
RESOLVED_MAX = 4096  # names kept at most (past this the cache starts afresh)
UNREACHABLE = "the address is not reachable from this service"
# What inet_aton() would read as an IPv4 address: 1-4 parts, decimal, octal (leading 0) or hex (0x).
NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?", re.IGNORECASE)

# Addresses an allow-listed *name* resolved to for the connection being opened in this context: the
# socket factory only sees addresses, so the resolver vouches for these ones.
_vouched: ContextVar[frozenset[str]] = ContextVar("ssrf_vouched", default=frozenset())


class Refused(OSError):
    """The connection would reach an address this service may not reach (EACCES survives aiohappyeyeballs
    combining several attempts' errors into one)."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.EACCES, f"{what}: not an address this service may reach")


class BadURL(Exception):
    """A URL the guard refuses before connecting, with why (the image loader answers InvalidImage.URL, or
    the row the action's mapping names for it)."""


def refused(exc: BaseException | None) -> bool:
    return isinstance(exc, Refused) or (isinstance(exc, OSError) and exc.errno == errno.EACCES)


class Guard:
    """Decides which addresses and URLs the fetcher may reach (`allow`: CIDRs, addresses or host names)."""

    def __init__(self, allow: list[str]) -> None:
        self.networks = [ipaddress.ip_network(a, strict=False) for a in allow if is_address(a, network=True)]
        self.hosts = {_host_key(a) for a in allow if not is_address(a, network=True)}
        # GuardedResolver's judged resolutions: (host, port, family) -> (expiry, allowed results, vouched)
        self.resolved: dict[tuple[str, int, int], tuple[float, list[ResolveResult], bool]] = {}

    def host_allowed(self, host: str) -> bool:
        return _host_key(host) in self.hosts

    def address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:a.b.c.d is a.b.c.d on the wire
        if any(ip in net for net in self.networks):
            return True
        if ip in METADATA_ADDRESSES or any(ip in net for net in EMBEDS_IPV4):
            return False
        return ip.is_global and not ip.is_multicast

    def check_url(self, url: str) -> URL:
        """The URL as aiohttp will request it, refused (`BadURL`) unless it may be fetched. The caller must
        request this very URL object: it is what was judged."""
        try:
            target = URL(url)
            host = target.raw_host  # what the connector resolves or connects to (IDNA-encoded)
            target.port  # noqa: B018 - a malformed port raises here
            written = urlsplit(url).netloc
        except (ValueError, UnicodeError, TypeError):
            raise BadURL("the URL is malformed") from None
        if target.scheme not in ("http", "https") or not host:
            raise BadURL("only http and https URLs are accepted")
        if is_address(host):
            if not written.isascii():
                raise BadURL("the host is written in non-ASCII characters that read as an address")
            if not self.host_allowed(host) and not self.address_allowed(host):
                raise BadURL(UNREACHABLE)
        elif NUMERIC_HOST.fullmatch(host):
            raise BadURL("a numeric host must be a dotted-quad IPv4 address")
        return target

    def guarded_socket(self, addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
        """aiohttp's `socket_factory`: called for every address a connection is opened to."""
        family, kind, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        if not self.address_allowed(address) and address not in _vouched.get():
            raise Refused(address)
        return socket.socket(family, kind, proto)


def is_address(text: str, network: bool = False) -> bool:
    try:
        if network:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return True


def _host_key(host: str) -> str:
    return host.lower().rstrip(".")


class GuardedResolver(AbstractResolver):
    """Resolve, then keep only the addresses the guard allows; none left means the fetch is refused.
    An allow-listed name keeps all its addresses, vouched for to the socket factory.

    What a name resolved to, *after* the guard judged it, is kept for RESOLVED_TTL seconds in the guard
    (shared by every resolver of that policy): each fetch no longer costs a getaddrinfo in a thread. A
    connection still goes only to an address the guard passed, so a rebinding DNS answer cannot reach
    anything; it only waits out the TTL. Refusals and failures are not kept.
    """

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        key = (host, port, family)
        now = time.monotonic()
        cached = self.guard.resolved.get(key)
        if cached is not None and cached[0] > now:
            results, vouch = cached[1], cached[2]
        else:
            results, vouch = await self._judged(host, port, family)
            if len(self.guard.resolved) >= RESOLVED_MAX:
                self.guard.resolved.clear()
            self.guard.resolved[key] = (now + RESOLVED_TTL, results, vouch)
        if vouch:
            _vouched.set(frozenset(r["host"] for r in results))
        return list(results)

    async def _judged(self, host: str, port: int, family: socket.AddressFamily) -> tuple[list[ResolveResult], bool]:
        results = await self.inner.resolve(host, port, family)
        if self.guard.host_allowed(host):
            return results, True
        allowed = [r for r in results if self.guard.address_allowed(r["host"])]
        if not allowed:
            raise Refused(host)
        return allowed, False

    async def close(self) -> None:
        await self.inner.close()


def guarded_connector(guard: Guard, limit: int = 64) -> aiohttp.TCPConnector:
    """No aiohttp DNS cache: each connection goes through the resolver in the requesting task's context
    (which keeps its own cache of judged answers, and vouches per request)."""
    return aiohttp.TCPConnector(resolver=GuardedResolver(guard), socket_factory=guard.guarded_socket,
                                limit=limit, use_dns_cache=False)


@contextmanager
def connection_scope() -> Iterator[None]:
    """Wrap each request through the connector: addresses vouched for inside it are forgotten after it,
    so an earlier hop's allow-listed name never vouches for a later hop's IP literal."""
    token = _vouched.set(frozenset())
    try:
        yield
    finally:
        _vouched.reset(token)
