"""The one way this service talks to a customer's server: deliveries, verification files, the test tool.

Customer URLs are hostile input. A URL that names (or resolves to) the metadata service, the VPC or
the loopback interface would turn the service into a proxy into our own network, so every request
goes through the same checks here, and the address that was checked is the address connected to:
the name is resolved once, every answer is vetted, and urllib3 is handed the IP address (with SNI,
certificate verification and the Host header still for the name). A DNS answer that changes
between the check and the connect therefore cannot reach inside.

It also sits on the delivery hot path, so connections are pooled per checked address and kept
alive across calls and across warm Lambda invocations, and DNS answers are cached briefly.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import http.client
import ipaddress
import itertools
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal, TypeAlias, cast
from urllib.parse import quote, urlsplit

from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse
from urllib3.util import Timeout
from urllib3.util.ssl_match_hostname import CertificateError

from webhooks.errors import InvalidInput

__all__ = [
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
_READ_CHUNK = 16_384
_DNS_TTL = 30.0
_DNS_CACHE_SIZE = 1024
_POOL_CACHE_SIZE = 256
# Connections kept per receiver address: as many as the delivery function's concurrency allows (its
# default), so a batch for one host never opens throwaway connections.
_POOL_MAXSIZE = 100
# Lambda allows 1024 open files: pools of hosts we stopped talking to must not pin idle sockets.
_POOL_IDLE_SECONDS = 60.0


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


def _resolve(host: str, port: int, resolver: Resolver, *, use_cache: bool) -> tuple[str, ...]:
    key = (resolver, host, port)
    now = time.monotonic()
    if use_cache:
        with _dns_lock:
            hit = _dns_cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
    try:
        answers = tuple(resolver(host, port))
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
    target: _Target, policy: OutboundPolicy, resolver: Resolver | None, *, at_send: bool
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
        answers = _resolve(target.host, target.port, resolver or _system_resolver, use_cache=at_send)
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
    _checked_addresses(_parse(url, policy), policy, resolver, at_send=False)


# --------------------------------------------------------------------------------------------------
# Deadline


class _Deadline:
    __slots__ = ("at", "done", "fired", "sock")

    def __init__(self, at: float) -> None:
        self.at = at
        self.done = False
        self.fired = False
        self.sock: socket.socket | None = None


def _shutdown(sock: socket.socket) -> None:
    # The base-class method on purpose: SSLSocket.shutdown would also drop its SSL object under the
    # feet of the thread that is reading from it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """Enforces total_timeout while the status line and headers are read.

    Connecting and the TLS handshake are bounded by the connect timeout as a whole, and the body is
    read one socket read at a time against the deadline, but http.client reads the response head
    line by line with as many socket reads as it takes: a receiver trickling a byte every second
    would hold a worker for hours. One thread for the whole process shuts down the socket of any
    request past its deadline, which makes the blocked read return at once. Shutdown happens under
    the lock, and callers only close or pool a socket after detaching it under the same lock, so a
    socket is never touched after it changed hands.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._seq = itertools.count()
        self._live = 0
        self._thread: threading.Thread | None = None

    def arm(self, at: float) -> _Deadline:
        deadline = _Deadline(at)
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="safe-http-deadline", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (at, next(self._seq), deadline))
            self._live += 1
            if self._heap[0][2] is deadline:
                self._cond.notify()
        return deadline

    def attach(self, deadline: _Deadline, sock: socket.socket | None) -> bool:
        """Watch ``sock`` from now on (None: stop watching any socket). True when already fired."""
        with self._cond:
            if deadline.done:
                return deadline.fired
            deadline.sock = sock
            if deadline.fired and sock is not None:
                _shutdown(sock)
            return deadline.fired

    def finish(self, deadline: _Deadline) -> None:
        with self._cond:
            if deadline.done:
                return
            deadline.done = True
            deadline.sock = None
            self._live -= 1
            # Finished entries are only dropped when they reach the top; rebuild before they pile up.
            if len(self._heap) > 256 and len(self._heap) > 4 * self._live:
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                deadline = heapq.heappop(self._heap)[2]
                deadline.fired = True
                if deadline.sock is not None:
                    _shutdown(deadline.sock)


_WATCHDOG = _Watchdog()


# --------------------------------------------------------------------------------------------------
# Connections


_Pool: TypeAlias = HTTPConnectionPool  # HTTPSConnectionPool included
_Conn: TypeAlias = HTTPConnection  # HTTPSConnection included
_PoolKey: TypeAlias = tuple[str, str, int, str]
# Only a fallback: every request sets the connection's timeout itself from the policy and deadline.
_POOL_TIMEOUT = Timeout(connect=5.0, read=15.0)


@cache
def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    try:
        import certifi
    except ImportError:
        return context
    context.load_verify_locations(cafile=certifi.where())
    return context


_pools_lock = threading.Lock()
_pools: OrderedDict[_PoolKey, tuple[_Pool, float]] = OrderedDict()


def _pool_for(scheme: str, ip: str, port: int, server_hostname: str) -> _Pool:
    key = (scheme, ip, port, server_hostname)
    now = time.monotonic()
    stale: list[_Pool] = []
    with _pools_lock:
        entry = _pools.get(key)
        if entry is None:
            pool: _Pool
            if scheme == "https":
                # No assert_hostname: with server_hostname set, OpenSSL itself verifies the certificate
                # for the name during the handshake, and the shared context is never mutated.
                pool = HTTPSConnectionPool(
                    ip,
                    port,
                    maxsize=_POOL_MAXSIZE,
                    block=False,
                    retries=False,
                    timeout=_POOL_TIMEOUT,
                    ssl_context=_tls_context(),
                    server_hostname=server_hostname,
                )
            else:
                pool = HTTPConnectionPool(
                    ip, port, maxsize=_POOL_MAXSIZE, block=False, retries=False, timeout=_POOL_TIMEOUT
                )
        else:
            pool = entry[0]
        _pools[key] = (pool, now)
        _pools.move_to_end(key)
        while _pools:
            oldest_key, (oldest, used) = next(iter(_pools.items()))
            if len(_pools) <= _POOL_CACHE_SIZE and used > now - _POOL_IDLE_SECONDS:
                break
            del _pools[oldest_key]
            stale.append(oldest)
    for old in stale:
        old.close()
    return pool


def clear_caches() -> None:
    """Forget cached DNS answers and close every pooled connection (tests; never needed in production)."""
    with _dns_lock:
        _dns_cache.clear()
    with _pools_lock:
        pools = [pool for pool, _ in _pools.values()]
        _pools.clear()
    for pool in pools:
        pool.close()


# --------------------------------------------------------------------------------------------------
# Errors


def _root_cause(exc: BaseException) -> BaseException:
    seen = 0
    while isinstance(exc, u3.HTTPError) and seen < 5:
        inner = exc.__cause__
        if inner is None and isinstance(exc, u3.ProtocolError) and len(exc.args) > 1:
            candidate = exc.args[1]
            inner = candidate if isinstance(candidate, BaseException) else None
        if inner is None:
            break
        exc, seen = inner, seen + 1
    return exc


def _too_slow(policy: OutboundPolicy) -> OutboundError:
    return OutboundError(f"no complete response within {policy.total_timeout:g} s", kind="timeout")


def _transport_error(
    exc: BaseException, deadline: _Deadline, policy: OutboundPolicy, *, connecting: bool = False
) -> OutboundError:
    if deadline.fired:
        return _too_slow(policy)
    root = _root_cause(exc)
    if isinstance(root, TimeoutError | u3.TimeoutError):
        if connecting:
            return OutboundError("connection timed out", kind="timeout")
        return OutboundError("timed out waiting for the response", kind="timeout")
    if isinstance(root, ssl.SSLCertVerificationError):
        detail = root.verify_message or "not trusted"
        return OutboundError(f"TLS certificate rejected: {detail}", kind="tls")
    if isinstance(root, CertificateError):
        return OutboundError("TLS certificate does not match the host name", kind="tls")
    if isinstance(root, ssl.SSLError):
        return OutboundError(f"TLS failed: {root.reason or type(root).__name__}", kind="tls")
    if isinstance(root, http.client.RemoteDisconnected):
        return OutboundError("the server closed the connection without a response", kind="connect")
    if isinstance(root, http.client.IncompleteRead):
        return OutboundError("the response body ended early", kind="protocol")
    if isinstance(root, http.client.LineTooLong):
        return OutboundError("the response has a line that is too long", kind="protocol")
    if isinstance(root, u3.NewConnectionError):
        return OutboundError("could not connect", kind="connect")
    if isinstance(root, http.client.HTTPException | u3.HTTPError):
        return OutboundError("the response is not valid HTTP", kind="protocol")
    if isinstance(root, ConnectionRefusedError):
        return OutboundError("connection refused", kind="connect")
    if isinstance(root, ConnectionResetError | ConnectionAbortedError):
        return OutboundError("connection reset", kind="connect")
    if isinstance(root, BrokenPipeError):
        return OutboundError("the server closed the connection while the request was sent", kind="connect")
    if isinstance(root, OSError):
        if root.errno == errno.ENETUNREACH:
            return OutboundError("network unreachable", kind="connect")
        if root.errno == errno.EHOSTUNREACH:
            return OutboundError("host unreachable", kind="connect")
        return OutboundError(f"connection failed: {root.strerror or type(root).__name__}", kind="connect")
    return OutboundError(f"request failed: {type(root).__name__}", kind="protocol")


_TRANSPORT_ERRORS = (OSError, http.client.HTTPException, u3.HTTPError, CertificateError)


class _Stale(Exception):
    """A kept-alive connection turned out to be closed by the server: worth one fresh attempt."""


class _ConnectFailed(Exception):
    def __init__(self, error: OutboundError) -> None:
        super().__init__(str(error))
        self.error = error


# --------------------------------------------------------------------------------------------------
# Requests


def _remaining(deadline: _Deadline, policy: OutboundPolicy) -> float:
    left = deadline.at - time.monotonic()
    if left <= 0:
        raise _too_slow(policy)
    return left


def _read_body(
    resp: HTTPResponse, sock: socket.socket, deadline: _Deadline, policy: OutboundPolicy
) -> tuple[bytes, bool]:
    """Up to max_body bytes, and whether the body was read to its end (the connection is reusable)."""
    body = bytearray()
    while len(body) < policy.max_body:
        # read1 makes at most one read on the socket, so this timeout bounds it by the deadline.
        # A `Connection: close` response has http.client close its socket object (the response's
        # file keeps the descriptor): then the timeout set before the request still bounds the read.
        with contextlib.suppress(OSError):
            sock.settimeout(_remaining(deadline, policy))
        chunk = resp.read1(min(_READ_CHUNK, policy.max_body - len(body)), decode_content=False)
        if not chunk:
            return bytes(body), True
        body += chunk
    return bytes(body), resp.closed


def _exchange(
    pool: _Pool,
    conn: _Conn,
    method: str,
    target: _Target,
    body: bytes | None,
    headers: dict[str, str],
    policy: OutboundPolicy,
    deadline: _Deadline,
    started: float,
) -> Response:
    reusable = False
    resp = None
    try:
        reused = not conn.is_closed
        if not reused:
            conn.timeout = min(policy.connect_timeout, _remaining(deadline, policy))
            try:
                conn.connect()
            except _TRANSPORT_ERRORS as exc:
                error = _transport_error(exc, deadline, policy, connecting=True)
                if error.kind in ("connect", "timeout") and not deadline.fired:
                    raise _ConnectFailed(error) from None
                raise error from None
        sock = conn.sock
        _WATCHDOG.attach(deadline, sock)
        try:
            conn.timeout = _remaining(deadline, policy)
            conn.request(
                method, target.path, body=body, headers=headers, preload_content=False, decode_content=False
            )
            conn.timeout = _remaining(deadline, policy)
            resp = conn.getresponse()
        except _TRANSPORT_ERRORS as exc:
            if reused and not deadline.fired and isinstance(_root_cause(exc), ConnectionError):
                raise _Stale from None
            raise _transport_error(exc, deadline, policy) from None
        try:
            content, complete = _read_body(resp, sock, deadline, policy)
        except _TRANSPORT_ERRORS as exc:
            raise _transport_error(exc, deadline, policy) from None
        result = Response(
            status=resp.status,
            headers=resp.headers,
            body=content,
            elapsed_ms=int((time.monotonic() - started) * 1000),
        )
        reusable = complete
        return result
    finally:
        fired = _WATCHDOG.attach(deadline, None)
        if reusable and not fired:
            pool._put_conn(conn)
        else:
            if resp is not None:
                resp.close()
            conn.close()
            pool._put_conn(None)


def _take(pool: _Pool) -> _Conn:
    """A pooled connection (kept alive, or closed and to be connected), taking one of the pool's slots."""
    try:
        return cast(_Conn, pool._get_conn())
    except u3.ClosedPoolError:
        # Evicted by another thread meanwhile: a one-off connection, closed after use by _put_conn.
        return cast(_Conn, pool._new_conn())


def _outgoing_headers(headers: Mapping[str, str] | None, target: _Target) -> dict[str, str]:
    # Framing and Host are ours: a caller-supplied Host would defeat connecting by address, and a
    # stray Content-Length would desynchronise a kept-alive connection.
    merged = {
        name: value
        for name, value in (headers or {}).items()
        if name.lower() not in ("host", "content-length", "transfer-encoding")
    }
    merged["Host"] = target.host_header
    return merged


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
    target = _parse(url, policy)
    addresses = _checked_addresses(target, policy, resolver, at_send=True)
    outgoing = _outgoing_headers(headers, target)
    deadline = _WATCHDOG.arm(started + policy.total_timeout)
    try:
        failure: OutboundError | None = None
        for ip in addresses:
            pool = _pool_for(target.scheme, ip, target.port, target.host)
            try:
                try:
                    return _exchange(
                        pool, _take(pool), method, target, body, outgoing, policy, deadline, started
                    )
                except _Stale:
                    # The receiver dropped an idle connection; its pooled siblings are likely gone too.
                    fresh = _take(pool)
                    fresh.close()
                    return _exchange(pool, fresh, method, target, body, outgoing, policy, deadline, started)
            except _ConnectFailed as exc:
                # Nothing was sent yet, so the next address of the same name is safe to try.
                failure = exc.error
        if failure is None:
            raise _too_slow(policy)
        raise failure
    finally:
        _WATCHDOG.finish(deadline)
