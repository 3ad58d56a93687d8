"""The one way this service talks to a customer's server: deliveries, verification files, the test tool.

Customer URLs are hostile input. A URL that names (or resolves to) the metadata service, the VPC or
the loopback interface would turn the service into a proxy into our own network, so every request
goes through the same checks here, and the address that was checked is the address connected to:
the name is resolved once, every answer is vetted, and the socket is opened to the IP address (with
SNI, certificate verification and the Host header still for the name). A DNS answer that changes
between the check and the connect therefore cannot reach inside.

It also sits on the delivery hot path, so it speaks HTTP/1.1 itself (RFC 9112, client side: one
write per request, the response read straight off the socket with every read bounded by the
request's deadline), connections are pooled per checked address and kept alive across calls and
across warm Lambda invocations, and DNS answers and parsed URLs are cached. http.client (under
urllib3 and requests) spends most of a fast receiver's round trip parsing headers with the email
package; here a delivery's whole exchange is a fraction of that.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Literal, TypeAlias
from urllib.parse import quote, urlsplit

from webhooks.errors import InvalidInput

__all__ = [
    "Headers",
    "OutboundError",
    "OutboundKind",
    "OutboundPolicy",
    "Resolver",
    "Response",
    "UnsafeUrl",
    "check_url",
    "clear_caches",
    "request",
]

Resolver: TypeAlias = Callable[[str, int], list[str]]
"""(host, port) -> IP address strings. Injectable so tests never need real DNS."""

OutboundKind: TypeAlias = Literal["connect", "timeout", "tls", "protocol", "unsafe"]

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_READ_CHUNK = 65_536
_DNS_TTL = 30.0
_DNS_CACHE_SIZE = 1024
_POOL_CACHE_SIZE = 256
# Connections kept per receiver address: as many as the delivery function's concurrency allows (its
# default), so a batch for one host never opens throwaway connections.
_POOL_MAXSIZE = 100
# Lambda allows 1024 open files: pools of hosts we stopped talking to must not pin idle sockets,
# and all pools together keep at most _MAX_IDLE.
_POOL_IDLE_SECONDS = 60.0
_MAX_IDLE = 512
_PARSE_CACHE_SIZE = 1024


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool = False
    allow_private: bool = False
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    max_body: int = 65_536

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


class UnsafeUrl(InvalidInput, OutboundError):
    """The URL may not be called. An InvalidInput on field ``url`` for the API (422), and an
    OutboundError of kind ``unsafe`` for senders, so a delivery loop catching OutboundError also
    records a target that turned unsafe since it was registered."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, field="url")
        self.reason = reason
        self.kind = "unsafe"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_ms: int


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


def _address_problem(addr: _IPAddress, policy: OutboundPolicy) -> str | None:
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
        return None if policy.allow_private else why
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
class _Target:
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


def _parse(url: str, policy: OutboundPolicy) -> _Target:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"URL is longer than {MAX_URL_LENGTH} characters")
    if _UNSAFE_CHARS.search(url):
        raise UnsafeUrl("URL contains white space or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UnsafeUrl("URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme == "http" and not policy.allow_http:
        raise UnsafeUrl("plain http is not allowed, use https")
    if scheme not in _DEFAULT_PORTS:
        raise UnsafeUrl(
            "only http and https URLs are allowed" if policy.allow_http else "only https URLs are allowed"
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
    return _Target(scheme, host, literal, port, path, host_header)


def _is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


# --------------------------------------------------------------------------------------------------
# Resolution


class _Unresolvable(Exception):
    pass


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_dns_lock = threading.Lock()
_dns_cache: OrderedDict[tuple[Resolver, str, int], tuple[float, tuple[str, ...]]] = OrderedDict()
# Resolutions under way, so that a batch of deliveries to one slow name waits on one lookup.
_dns_pending: dict[tuple[Resolver, str, int], Future[tuple[str, ...]]] = {}


class _ResolveTimeout(Exception):
    pass


def _lookup_in_thread(key: tuple[Resolver, str, int]) -> Future[tuple[str, ...]]:
    """The pending lookup of `key`, started in a thread of its own if there is none. A resolver
    cannot be interrupted (getaddrinfo has no timeout), so the caller waits at most its deadline and
    the thread ends whenever the resolver returns."""
    with _dns_lock:
        pending = _dns_pending.get(key)
        if pending is not None:
            return pending
        pending = _dns_pending[key] = Future()
    resolver, host, port = key

    def run() -> None:
        try:
            pending.set_result(tuple(resolver(host, port)))
        except BaseException as exc:  # handed to the waiting request, whatever it is
            pending.set_exception(exc)
        finally:
            with _dns_lock:
                _dns_pending.pop(key, None)

    threading.Thread(target=run, name="resolve", daemon=True).start()
    return pending


def _resolve(
    host: str, port: int, resolver: Resolver, deadline: float, *, use_cache: bool
) -> tuple[str, ...]:
    key = (resolver, host, port)
    now = time.monotonic()
    if use_cache:
        with _dns_lock:
            hit = _dns_cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
    try:
        answers = _lookup_in_thread(key).result(timeout=max(deadline - now, 0.0))
    except TimeoutError:
        raise _ResolveTimeout from None
    except (OSError, UnicodeError, ValueError):
        raise _Unresolvable from None
    if not answers:
        raise _Unresolvable
    if use_cache:
        with _dns_lock:
            _dns_cache[key] = (now + _DNS_TTL, answers)
            _dns_cache.move_to_end(key)
            while len(_dns_cache) > _DNS_CACHE_SIZE:
                _dns_cache.popitem(last=False)
    return answers


def _checked_addresses(
    target: _Target, policy: OutboundPolicy, resolver: Resolver | None, deadline: float, *, at_send: bool
) -> list[str]:
    """Every address the target stands for, each one vetted; raises UnsafeUrl on the first bad one."""
    if target.literal is not None:
        why = _address_problem(target.literal, policy)
        if why:
            raise UnsafeUrl(f"{target.literal} is {why}")
        return [str(target.literal)]
    if _is_localhost(target.host) and not policy.allow_private:
        raise UnsafeUrl(f"{target.host} is a loopback address")
    try:
        answers = _resolve(
            target.host, target.port, resolver or _system_resolver, deadline, use_cache=at_send
        )
    except _ResolveTimeout:
        raise OutboundError(
            f"the host name did not resolve within {policy.total_timeout:g} s", kind="timeout"
        ) from None
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
        why = _address_problem(addr, policy)
        if why:
            raise UnsafeUrl(f"resolves to {addr}, {why}")
        checked.append(str(addr))
    return checked


def check_url(url: str, policy: OutboundPolicy, resolver: Resolver | None = None) -> None:
    """Static + DNS check at registration/change time; raises UnsafeUrl with the reason."""
    deadline = time.monotonic() + policy.total_timeout
    _checked_addresses(_parse(url, policy), policy, resolver, deadline, at_send=False)


# --------------------------------------------------------------------------------------------------
# Connections

# Where every socket to a receiver is opened (tests record or refuse connections here).
_create_connection = socket.create_connection

# Scheme, checked address, port, TLS server name, and the path: a connection serves one URL only, so
# whatever a receiver writes on it unasked can at worst be mistaken for an answer of the same URL
# (the same hook), never for another tenant's on a shared receiving host.
_PoolKey: TypeAlias = tuple[str, str, int, str, str]


@cache
def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    try:
        import certifi
    except ImportError:
        return context
    context.load_verify_locations(cafile=certifi.where())
    return context


class _Conn:
    """A connection to a checked address, kept alive between requests."""

    __slots__ = ("idle_since", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.idle_since = 0.0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def dropped(self) -> bool:
        """Whether the server closed this idle connection (or sent something nobody asked for)."""
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        if not poller.poll(0):
            return False
        try:
            self.sock.setblocking(False)
            self.sock.recv(1)
        except (ssl.SSLWantReadError, BlockingIOError):
            return False  # a TLS record that is no data, such as a session ticket
        except OSError:
            return True
        return True  # the end of the stream, or unrequested bytes: either way unusable


_pools_lock = threading.Lock()
# Idle connections per key, least recently used key first; each list's last entry is its newest.
_idle: OrderedDict[_PoolKey, list[_Conn]] = OrderedDict()
_idle_count = 0


def _checkout(key: _PoolKey) -> _Conn | None:
    """The newest idle connection for `key` that is still usable, if any."""
    global _idle_count
    while True:
        with _pools_lock:
            conns = _idle.get(key)
            if not conns:
                return None
            conn = conns.pop()
            _idle_count -= 1
        # Always asked, however recently used: bytes nobody asked for (a late second response)
        # would otherwise be read as the next request's answer.
        if time.monotonic() - conn.idle_since < _POOL_IDLE_SECONDS and not conn.dropped():
            return conn
        conn.close()


def _checkin(key: _PoolKey, conn: _Conn) -> None:
    """Keeps `conn` for the next request to `key`, within the caps; closes what they leave out."""
    global _idle_count
    now = time.monotonic()
    conn.idle_since = now
    closing: list[_Conn] = []
    with _pools_lock:
        conns = _idle.get(key)
        if conns is None:
            conns = _idle[key] = []
        else:
            _idle.move_to_end(key)
        if len(conns) < _POOL_MAXSIZE:
            conns.append(conn)
            _idle_count += 1
        else:
            closing.append(conn)
        # The least recently used hosts give way first: beyond the caps, or idle too long.
        while _idle:
            oldest_key, oldest = next(iter(_idle.items()))
            over = _idle_count > _MAX_IDLE or len(_idle) > _POOL_CACHE_SIZE
            if oldest and not over and oldest[-1].idle_since > now - _POOL_IDLE_SECONDS:
                break
            if not oldest:
                if oldest_key == key:
                    break
                del _idle[oldest_key]
                continue
            closing.append(oldest.pop(0))
            _idle_count -= 1
    for old in closing:
        old.close()


def clear_caches() -> None:
    """Forget cached DNS answers and close every pooled connection (tests; never needed in production)."""
    global _idle_count
    with _dns_lock:
        _dns_cache.clear()
    _parse_cached.cache_clear()
    with _pools_lock:
        conns = [conn for pooled in _idle.values() for conn in pooled]
        _idle.clear()
        _idle_count = 0
    for conn in conns:
        conn.close()


# --------------------------------------------------------------------------------------------------
# Errors


class _Stale(Exception):
    """A kept-alive connection was found closed before a byte of the request was written: the request
    certainly did not reach the server, so it is worth one fresh attempt."""


class _ConnectFailed(Exception):
    def __init__(self, error: OutboundError) -> None:
        super().__init__(str(error))
        self.error = error


class _NoResponse(Exception):
    """The server closed the connection before sending a single byte of a response."""


class _Malformed(Exception):
    """The response is not HTTP this client will read; the message says why."""


def _too_slow(policy: OutboundPolicy) -> OutboundError:
    return OutboundError(f"no complete response within {policy.total_timeout:g} s", kind="timeout")


def _transport_error(
    exc: BaseException, deadline: float, policy: OutboundPolicy, *, connecting: bool = False
) -> OutboundError:
    if isinstance(exc, TimeoutError):
        if time.monotonic() >= deadline:
            return _too_slow(policy)
        return OutboundError("connection timed out", kind="timeout")
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or "not trusted"
        return OutboundError(f"TLS certificate rejected: {detail}", kind="tls")
    if isinstance(exc, ssl.SSLError):
        return OutboundError(f"TLS failed: {exc.reason or type(exc).__name__}", kind="tls")
    if isinstance(exc, ConnectionRefusedError):
        return OutboundError("connection refused", kind="connect")
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        return OutboundError("connection reset", kind="connect")
    if isinstance(exc, BrokenPipeError):
        return OutboundError("the server closed the connection while the request was sent", kind="connect")
    if isinstance(exc, OSError):
        if exc.errno == errno.ENETUNREACH:
            return OutboundError("network unreachable", kind="connect")
        if exc.errno == errno.EHOSTUNREACH:
            return OutboundError("host unreachable", kind="connect")
        if connecting and exc.strerror is None:
            return OutboundError("could not connect", kind="connect")
        return OutboundError(f"connection failed: {exc.strerror or type(exc).__name__}", kind="connect")
    return OutboundError(f"request failed: {type(exc).__name__}", kind="protocol")


def _remaining(deadline: float, policy: OutboundPolicy) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _too_slow(policy)
    return left


# --------------------------------------------------------------------------------------------------
# Connecting


def _connect(target: _Target, ip: str, policy: OutboundPolicy, deadline: float) -> _Conn:
    """A new connection to the checked address; for https, verified for the name. Connecting and
    the TLS handshake together get at most connect_timeout, however slowly the server answers."""
    until = min(deadline, time.monotonic() + policy.connect_timeout)
    try:
        sock = _create_connection((ip, target.port), timeout=max(until - time.monotonic(), 0.001))
    except OSError as exc:
        error = _transport_error(exc, deadline, policy, connecting=True)
        if error.kind in ("connect", "timeout") and time.monotonic() < deadline:
            raise _ConnectFailed(error) from None  # nothing was sent: the next address may be tried
        raise error from None
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.scheme == "https":
            sock = _handshake(sock, target.host, until)
    except OSError as exc:
        sock.close()
        raise _transport_error(exc, deadline, policy, connecting=True) from None
    return _Conn(sock)


def _handshake(sock: socket.socket, server_hostname: str, until: float) -> socket.socket:
    """TLS with SNI and certificate verification for the name, bounded as a whole by `until`."""
    tls = _tls_context().wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
    try:
        tls.setblocking(False)
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl.SSLWantReadError:
                event = select.POLLIN
            except ssl.SSLWantWriteError:
                event = select.POLLOUT
            left = until - time.monotonic()
            poller = select.poll()
            poller.register(tls.fileno(), event)
            if left <= 0 or not poller.poll(left * 1000):
                raise TimeoutError("TLS handshake timed out")
    except BaseException:
        tls.close()
        raise


# --------------------------------------------------------------------------------------------------
# Requests and responses (HTTP/1.1, RFC 9112)

# A header name (a token) and what a header value may not contain (CR, LF, NUL and other controls).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?:[ \t][^\r\n]*)?")
_MAX_HEAD = 65_536
_MAX_FIELDS = 100
_MAX_LINE = 8_192
_MAX_INTERIM = 10


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; a repeated field's values joined with ", "."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # names in lower case

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


def _request_bytes(
    method: str, target: _Target, headers: Mapping[str, str] | None, body: bytes | None
) -> bytes:
    """Request line, headers and body, to be sent in one write. Framing and Host are ours: a
    caller-supplied Host would defeat connecting by address, and a stray Content-Length would
    desynchronise a kept-alive connection."""
    lines = [f"{method} {target.path} HTTP/1.1", f"Host: {target.host_header}"]
    for name, value in (headers or {}).items():
        if name.lower() in _FRAMING:
            continue
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise ValueError(f"header {name!r} cannot be sent")
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1") + (body or b"")


class _Reader:
    """The response's bytes as they arrive, every socket read bounded by the request's deadline
    (a server trickling a byte at a time still ends there)."""

    __slots__ = ("buf", "deadline", "policy", "received", "sock")

    def __init__(self, sock: socket.socket, deadline: float, policy: OutboundPolicy) -> None:
        self.sock = sock
        self.deadline = deadline
        self.policy = policy
        self.buf = bytearray()
        self.received = 0

    def fill(self) -> bool:
        """Reads once more; False at the end of the stream."""
        self.sock.settimeout(_remaining(self.deadline, self.policy))
        data = self.sock.recv(_READ_CHUNK)
        if not data:
            return False
        self.buf += data
        self.received += len(data)
        return True

    def take(self, count: int) -> bytes:
        data = bytes(self.buf[:count])
        del self.buf[:count]
        return data

    def line(self) -> bytes:
        """The next line, without its line ending."""
        while (end := self.buf.find(b"\n")) < 0:
            if len(self.buf) > _MAX_LINE:
                raise _Malformed("the response has a line that is too long")
            if not self.fill():
                raise _Malformed("the response body ended early")
        return self.take(end + 1)[:-1].removesuffix(b"\r")

    def at_least(self, count: int) -> None:
        while len(self.buf) < count:
            if not self.fill():
                raise _Malformed("the response body ended early")


def _read_head(reader: _Reader) -> tuple[int, int, Headers]:
    """(minor version, status, headers) of the final response, interim 1xx responses skipped."""
    for _ in range(_MAX_INTERIM):
        while True:
            while reader.buf[:2] == b"\r\n":  # stray line ends before a status line are allowed
                del reader.buf[:2]
            end = _HEAD_END.search(reader.buf, 0, _MAX_HEAD)
            if end is not None:
                break
            if len(reader.buf) >= _MAX_HEAD:
                raise _Malformed("the response head is too large")
            if not reader.fill():
                if not reader.received:
                    raise _NoResponse
                raise _Malformed("the response ended within its head")
        lines = reader.take(end.end()).split(b"\n")
        status_line = _STATUS_LINE.fullmatch(lines[0].removesuffix(b"\r"))
        if status_line is None:
            raise _Malformed("the response is not valid HTTP")
        status = int(status_line[2])
        fields = _fields(lines[1:])
        if status >= 200:
            return int(status_line[1]), status, fields
        if status == 101:
            raise _Malformed("the server switched protocols")
    raise _Malformed("too many interim responses")


def _fields(lines: list[bytes]) -> Headers:
    fields: dict[str, str] = {}
    name = ""
    count = 0
    for raw in lines:
        line = raw.removesuffix(b"\r").decode("latin-1")
        if not line:
            continue
        if line[0] in " \t":  # an obsolete folded continuation of the previous field
            if not name:
                raise _Malformed("the response head is not valid HTTP")
            fields[name] = f"{fields[name]} {line.strip()}"
            continue
        count += 1
        if count > _MAX_FIELDS:
            raise _Malformed("the response has too many header fields")
        raw_name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(raw_name):
            raise _Malformed("the response has an invalid header field")
        name = raw_name.lower()
        value = value.strip(" \t")
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    return Headers(fields)


def _tokens(value: str | None) -> list[str]:
    return [part.strip().lower() for part in value.split(",") if part.strip()] if value else []


def _read_body(
    reader: _Reader, method: str, version: int, status: int, headers: Headers
) -> tuple[bytes, bool]:
    """The body, at most max_body bytes, and whether the connection may carry another request."""
    limit = reader.policy.max_body
    keep = version == 1 and "close" not in _tokens(headers.get("connection"))
    if method == "HEAD" or status in (204, 304):
        return b"", keep and not reader.buf
    codings = _tokens(headers.get("transfer-encoding"))
    if codings:
        if codings[-1] != "chunked":
            return _read_to_close(reader, limit), False
        # Both framings at once is how responses get smuggled: read it, never reuse the connection.
        return _read_chunked(reader, limit, keep and "content-length" not in headers)
    declared = headers.get("content-length")
    if declared is None:
        return _read_to_close(reader, limit), False
    values = {part.strip() for part in declared.split(",")}
    length = values.pop() if len(values) == 1 else ""
    if not (length.isascii() and length.isdigit() and len(length) <= 18):
        raise _Malformed("the response has an invalid Content-Length")
    size = int(length)
    reader.at_least(min(size, limit))
    if size > limit:
        return reader.take(limit), False
    body = reader.take(size)
    return body, keep and not reader.buf


def _read_chunked(reader: _Reader, limit: int, keep: bool) -> tuple[bytes, bool]:
    body = bytearray()
    while True:
        size_text = reader.line().split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 15 or size_text.strip(b"0123456789abcdefABCDEF"):
            raise _Malformed("the response has an invalid chunk size")
        size = int(size_text, 16)
        if size == 0:
            for _ in range(_MAX_FIELDS + 1):  # trailer fields, then an empty line
                if not reader.line():
                    return bytes(body), keep and not reader.buf
            raise _Malformed("the response has too many trailer fields")
        room = limit - len(body)
        if size > room:
            reader.at_least(room)
            body += reader.take(room)
            return bytes(body), False
        reader.at_least(size)
        body += reader.take(size)
        if reader.line():
            raise _Malformed("the response has an invalid chunk")


def _read_to_close(reader: _Reader, limit: int) -> bytes:
    while len(reader.buf) < limit and reader.fill():
        pass
    return reader.take(limit)


def _exchange(
    key: _PoolKey,
    conn: _Conn,
    reused: bool,
    method: str,
    message: bytes,
    policy: OutboundPolicy,
    deadline: float,
    started: float,
) -> Response:
    """One request on `conn`, which then goes back to the pool if it may carry another, else is closed."""
    sock = conn.sock
    reader = _Reader(sock, deadline, policy)
    keep = False
    try:
        sock.settimeout(_remaining(deadline, policy))
        try:
            written = sock.send(message)
        except ConnectionError:
            if reused:
                raise _Stale from None  # refused before a single byte went out
            raise
        if written < len(message):
            sock.sendall(message[written:])
        version, status, headers = _read_head(reader)
        body, keep = _read_body(reader, method, version, status, headers)
    except _NoResponse:
        # The request went out: the server may have acted on it, so it is never sent again.
        raise OutboundError("the server closed the connection without a response", kind="connect") from None
    except _Malformed as exc:
        raise OutboundError(str(exc), kind="protocol") from None
    except OSError as exc:
        raise _transport_error(exc, deadline, policy) from None
    finally:
        if keep:
            _checkin(key, conn)
        else:
            conn.close()
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return Response(status=status, headers=headers, body=body, elapsed_ms=elapsed_ms)


@lru_cache(maxsize=_PARSE_CACHE_SIZE)
def _parse_cached(url: str, allow_http: bool) -> _Target:
    return _parse(url, OutboundPolicy(allow_http=allow_http))


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    policy: OutboundPolicy,
    resolver: Resolver | None = None,
) -> Response:
    """Raises UnsafeUrl if the target is forbidden at send time, OutboundError on transport failure.
    Any HTTP status (incl. 3xx, 4xx, 5xx) is returned as a Response, never raised."""
    started = time.monotonic()
    target = _parse_cached(url, policy.allow_http)
    deadline = started + policy.total_timeout
    addresses = _checked_addresses(target, policy, resolver, deadline, at_send=True)
    message = _request_bytes(method, target, headers, body)
    failure: OutboundError | None = None
    for ip in addresses:
        key = (target.scheme, ip, target.port, target.host, target.path)
        conn = _checkout(key)
        if conn is not None:
            try:
                return _exchange(key, conn, True, method, message, policy, deadline, started)
            except _Stale:
                pass  # the receiver dropped the idle connection: once more on a new one
        try:
            conn = _connect(target, ip, policy, deadline)
        except _ConnectFailed as exc:
            # Nothing was sent yet, so the next address of the same name is safe to try.
            failure = exc.error
            continue
        return _exchange(key, conn, False, method, message, policy, deadline, started)
    if failure is None:
        raise _too_slow(policy)
    raise failure
