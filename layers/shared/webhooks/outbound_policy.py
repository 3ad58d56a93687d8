"""What a request to a customer's server may reach, and why not: the outbound policy.

Customer URLs are hostile input. A URL that names (or resolves to) the metadata service, the VPC or
the loopback interface would turn the service into a proxy into our own network, so every request
is checked here first, and the address that was checked is the address connected to: the name is
resolved once (within the request's deadline: strangers run their own DNS servers), every answer is
vetted, and the transport (safe_http) opens its socket to that IP address, with SNI, certificate
verification and the Host header still for the name. A DNS answer that changes between the check
and the connect therefore cannot reach inside.

Nothing here makes a request; how one is made is the transport's job.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeAlias
from urllib.parse import quote, urlsplit

__all__ = [
    "OutboundError",
    "OutboundKind",
    "OutboundPolicy",
    "Resolutions",
    "Resolver",
    "Target",
    "UnsafeUrl",
    "check_url",
    "checked_addresses",
    "target_of",
    "tls_context",
]

Resolver: TypeAlias = Callable[[str, int], list[str]]
"""(host, port) -> IP address strings. Injectable so tests never need real DNS."""

OutboundKind: TypeAlias = Literal["connect", "timeout", "tls", "protocol", "unsafe"]

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DNS_TTL = 30.0
_DNS_CACHE_SIZE = 1024
_PARSE_CACHE_SIZE = 1024


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool = False
    allow_private: bool = False
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    max_body: int = 65_536
    # Certificate authorities trusted besides the usual ones (a PEM file): for tests and private
    # deployments; None trusts certifi's bundle (or the system's).
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_body < 0:
            raise ValueError("max_body must not be negative")


class OutboundError(Exception):
    """The request could not be completed. ``kind`` says why; ``str(error)`` is a short human reason."""

    def __init__(self, reason: str, *, kind: OutboundKind = "connect") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind: OutboundKind = kind


class UnsafeUrl(OutboundError):
    """The URL may not be called; the message says why. An OutboundError of kind ``unsafe``, so a
    sender catching OutboundError also records a target that turned unsafe since it was registered;
    the API turns it into its own invalid-input error on the field it came from."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, kind="unsafe")


# --------------------------------------------------------------------------------------------------
# Addresses

_IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


def _table(*rows: tuple[str, str]) -> tuple[tuple[_Network, str], ...]:
    return tuple((ipaddress.ip_network(net), why) for net, why in rows)


# Refused whatever the policy: the local stack never needs them and they lead to credentials.
_ALWAYS_REFUSED = _table(
    ("169.254.169.254/32", "the cloud metadata address"),
    ("fd00:ec2::254/128", "the cloud metadata address"),
    ("169.254.0.0/16", "a link-local address"),
    ("fe80::/10", "a link-local address"),
)
# What a local stack (allow_private) legitimately talks to.
_PRIVATE = _table(
    ("127.0.0.0/8", "a loopback address"),
    ("::1/128", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("fc00::/7", "a private (unique local) address"),
)
_RESERVED = _table(
    ("0.0.0.0/8", "a 'this network' address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("2001:db8::/32", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("224.0.0.0/4", "a multicast address"),
    ("ff00::/8", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "the unspecified address"),
    ("100::/64", "a discard-only address"),
)
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def _lookup(addr: _IPAddress, table: tuple[tuple[_Network, str], ...]) -> str | None:
    for net, why in table:
        if addr.version == net.version and addr in net:
            return why
    return None


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> str | None:
    # Whatever IPv4 address is inside, the network may route it to the inside (a NAT64 gateway, a
    # dual-stack host), so these forms are refused outright instead of re-checking the IPv4 part.
    low32 = ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF)
    if addr.ipv4_mapped is not None:
        return f"an IPv4-mapped IPv6 address (embeds {addr.ipv4_mapped}), not allowed"
    if addr in _V4_COMPATIBLE:
        return f"an IPv4-compatible IPv6 address (embeds {low32}), not allowed"
    if addr in _NAT64:
        return f"a NAT64 address (embeds {low32}), not allowed"
    if addr in _NAT64_LOCAL:
        return "a local-use NAT64 address (embeds an IPv4 address), not allowed"
    if addr.sixtofour is not None:
        return f"a 6to4 address (embeds {addr.sixtofour}), not allowed"
    if addr.teredo is not None:
        return f"a Teredo address (embeds {addr.teredo[1]}), not allowed"
    return None


# Every send checks its addresses again (a hook's few, over and over): remembered, not recomputed.
@lru_cache(maxsize=4096)
def _address_problem(addr: _IPAddress, allow_private: bool) -> str | None:
    """Why ``addr`` may not be connected to, or None when it may."""
    why = _lookup(addr, _ALWAYS_REFUSED)
    if why:
        return why
    if isinstance(addr, ipaddress.IPv6Address) and int(addr) > 1:
        # :: and ::1 sit inside ::/96 and get their own, clearer reasons below.
        why = _embedded_ipv4(addr)
        if why:
            return why
    why = _lookup(addr, _PRIVATE)
    if why:
        return None if allow_private else why
    why = _lookup(addr, _RESERVED)
    if why:
        return why
    if not addr.is_global:
        return "not a public address"
    return None


# --------------------------------------------------------------------------------------------------
# URLs

_NETLOC = re.compile(r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^\[\]:/?#@%\\]+))(?::(?P<port>[0-9]{0,5}))?")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A last label that is all digits or hex is how WHATWG parsers recognise an IPv4 address.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f]|\s")
_PATH_SAFE = "/%!$&'()*+,;=:@-._~?"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII name without trailing dot, or an IP address without brackets
    literal: _IPAddress | None
    port: int
    path: str  # path and query, what goes on the request line
    host_header: str


def _ambiguous_ipv4(name: str) -> bool:
    if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        return True
    try:
        socket.inet_aton(name)
    except OSError:
        return False
    return True


def _ascii_host(raw: str) -> str:
    host = raw.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeUrl("URL has an invalid host name") from None
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise UnsafeUrl("URL has an invalid host name")
    return host


def _parse(url: str, allow_http: bool) -> Target:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"URL is longer than {MAX_URL_LENGTH} characters")
    if _UNSAFE_CHARS.search(url):
        raise UnsafeUrl("URL contains white space or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeUrl("URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme == "http" and not allow_http:
        raise UnsafeUrl("plain http is not allowed, use https")
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeUrl(
            "only http and https URLs are allowed" if allow_http else "only https URLs are allowed"
        )
    if not parts.netloc:
        raise UnsafeUrl("URL has no host")
    if "@" in parts.netloc:
        raise UnsafeUrl("URL must not contain a user name or password")
    match = _NETLOC.fullmatch(parts.netloc)
    if match is None:
        raise UnsafeUrl("URL has an invalid host or port")

    default_port = _DEFAULT_PORTS[scheme]
    port = int(match["port"]) if match["port"] else default_port
    if not 1 <= port <= 65_535:
        raise UnsafeUrl("URL port must be between 1 and 65535")

    literal: _IPAddress | None
    if match["ipv6"] is not None:
        try:
            literal = ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            raise UnsafeUrl("URL has an invalid IPv6 address") from None
        host = str(literal)
        shown = f"[{host}]"
    else:
        host = _ascii_host(match["name"])
        try:
            literal = ipaddress.IPv4Address(host)
        except ValueError:
            literal = None
            if _ambiguous_ipv4(host):
                # 0177.0.0.1, 0x7f.1, 2130706433, 127.1: resolvers and parsers disagree on these, which is
                # exactly how filters get bypassed; only the canonical dotted quad is accepted.
                raise UnsafeUrl(
                    f"{host} is an ambiguous way to write an IP address; use the dotted decimal form"
                ) from None
        shown = host

    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if not path.isascii():
        path = quote(path, safe=_PATH_SAFE)
    host_header = shown if port == default_port else f"{shown}:{port}"
    return Target(scheme, host, literal, port, path, host_header)


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


# --------------------------------------------------------------------------------------------------
# Resolution


class _Unresolvable(Exception):
    pass


class _ResolveTimeout(Exception):
    pass


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_Question: TypeAlias = tuple[Resolver, str, int]


class Resolutions:
    """DNS answers, cached for a while, and the lookups under way (a batch of deliveries to one slow
    name waits on one lookup). A resolver cannot be interrupted (getaddrinfo has no timeout), so each
    lookup runs in a thread of its own: the request waits at most until its deadline, and the thread
    ends whenever the resolver returns."""

    def __init__(self, ttl: float = _DNS_TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cache: OrderedDict[_Question, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._pending: dict[_Question, Future[tuple[str, ...]]] = {}

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def resolve(self, host: str, port: int, resolver: Resolver, deadline: float) -> tuple[str, ...]:
        question = (resolver, host, port)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(question)
            if hit is not None and hit[0] > now:
                return hit[1]
        try:
            answers = self._lookup(question).result(timeout=max(deadline - now, 0.0))
        except TimeoutError:
            raise _ResolveTimeout from None
        except (OSError, UnicodeError, ValueError):
            raise _Unresolvable from None
        if not answers:
            raise _Unresolvable
        if self.ttl > 0:
            with self._lock:
                self._cache[question] = (now + self.ttl, answers)
                self._cache.move_to_end(question)
                while len(self._cache) > _DNS_CACHE_SIZE:
                    self._cache.popitem(last=False)
        return answers

    def _lookup(self, question: _Question) -> Future[tuple[str, ...]]:
        with self._lock:
            pending = self._pending.get(question)
            if pending is not None:
                return pending
            pending = self._pending[question] = Future()
        resolver, host, port = question

        def run() -> None:
            try:
                pending.set_result(tuple(resolver(host, port)))
            except BaseException as exc:  # handed to the waiting requests, whatever it is
                pending.set_exception(exc)
            finally:
                with self._lock:
                    self._pending.pop(question, None)

        threading.Thread(target=run, name="resolve", daemon=True).start()
        return pending


def checked_addresses(
    target: Target,
    policy: OutboundPolicy,
    resolutions: Resolutions,
    deadline: float,
    resolver: Resolver | None = None,
    *,
    at_send: bool = True,
) -> list[str]:
    """Every address the target stands for, each one vetted; raises UnsafeUrl on the first bad one.
    At send time, a name that does not resolve is an OutboundError (it may come back); at
    registration, it is an UnsafeUrl."""
    if target.literal is not None:
        why = _address_problem(target.literal, policy.allow_private)
        if why:
            raise UnsafeUrl(f"{target.literal} is {why}")
        return [str(target.literal)]
    if _is_localhost(target.host) and not policy.allow_private:
        raise UnsafeUrl(f"{target.host} is a loopback address")
    try:
        answers = resolutions.resolve(target.host, target.port, resolver or _system_resolver, deadline)
    except _ResolveTimeout:
        slow = f"the host name did not resolve within {policy.total_timeout:g} s"
        if at_send:
            raise OutboundError(slow, kind="timeout") from None
        raise UnsafeUrl(slow) from None
    except _Unresolvable:
        if at_send:
            raise OutboundError("host name does not resolve", kind="connect") from None
        raise UnsafeUrl("host name does not resolve") from None
    checked: list[str] = []
    for answer in answers:
        try:
            addr = ipaddress.ip_address(answer)
        except ValueError:
            raise UnsafeUrl("host name resolves to something that is not an IP address") from None
        why = _address_problem(addr, policy.allow_private)
        if why:
            raise UnsafeUrl(f"resolves to {addr}, {why}")
        checked.append(str(addr))
    return checked


@lru_cache(maxsize=_PARSE_CACHE_SIZE)
def target_of(url: str, allow_http: bool) -> Target:
    """The parsed, checked URL (cached: a hook's URL is parsed once, not per delivery)."""
    return _parse(url, allow_http)


def check_url(url: str, policy: OutboundPolicy, resolver: Resolver | None = None) -> None:
    """Static + DNS check at registration/change time; raises UnsafeUrl with the reason."""
    deadline = time.monotonic() + policy.total_timeout
    target = _parse(url, policy.allow_http)
    checked_addresses(target, policy, Resolutions(ttl=0), deadline, resolver, at_send=False)


# --------------------------------------------------------------------------------------------------
# TLS: verified for the name, whatever address was connected to


@lru_cache(maxsize=8)
def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """Certificate and host name verification on (the defaults), trusting certifi's bundle when
    installed, and `ca_file` besides when given."""
    context = ssl.create_default_context()
    try:
        import certifi
    except ImportError:
        pass
    else:
        context.load_verify_locations(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context
