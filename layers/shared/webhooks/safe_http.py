"""The one way this service talks to a customer's server: deliveries, verification files, the test tool.

This is the transport: how a request is made once the outbound policy (outbound_policy) has said
what may be reached. The name is resolved and vetted there, within the request's deadline; the
socket is opened here to that checked address, with SNI and certificate verification for the name.

It sits on the delivery hot path, so it speaks HTTP/1.1 itself (RFC 9112, client side: one write
per request, the response read straight off the socket with every read bounded by the request's
deadline), and connections are pooled per URL and kept alive across calls and across warm Lambda
invocations. A connection goes back to the pool only when its response was read to its framed end
with nothing after it, and it is checked again before reuse; a request is sent again only when a
reused connection refused its first byte.
"""

from __future__ import annotations

import contextlib
import errno
import re
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from webhooks.outbound_policy import (
    OutboundError,
    OutboundPolicy,
    Resolutions,
    Resolver,
    Target,
    UnsafeUrl,
    checked_addresses,
    target_of,
    tls_context,
)

__all__ = [
    "Headers",
    "OutboundError",
    "OutboundPolicy",
    "Response",
    "Transport",
    "UnsafeUrl",
    "clear_caches",
    "request",
]

_READ_CHUNK = 65_536
_POOL_CACHE_SIZE = 256
# Connections kept per URL: as many as the delivery function's concurrency allows (its default), so
# a batch for one hook never opens throwaway connections.
_POOL_MAXSIZE = 100
# Lambda allows 1024 open files: pools of hosts we stopped talking to must not pin idle sockets,
# and all pools together keep at most _MAX_IDLE.
_POOL_IDLE_SECONDS = 60.0
_MAX_IDLE = 512


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_ms: int


# --------------------------------------------------------------------------------------------------
# Connections

# Where every socket to a receiver is opened (tests record or refuse connections here).
_create_connection = socket.create_connection

# Scheme, checked address, port, TLS server name, and the path: a connection serves one URL only, so
# whatever a receiver writes on it unasked can at worst be mistaken for an answer of the same URL
# (the same hook), never for another tenant's on a shared receiving host.
_PoolKey: TypeAlias = tuple[str, str, int, str, str]


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


class Transport:
    """Requests over kept-alive connections: the pool (idle connections per URL, least recently used
    URL first, each list's last entry its newest) and the DNS answers, in one object."""

    def __init__(
        self,
        *,
        per_url: int = _POOL_MAXSIZE,
        max_idle: int = _MAX_IDLE,
        max_urls: int = _POOL_CACHE_SIZE,
        idle_seconds: float = _POOL_IDLE_SECONDS,
    ) -> None:
        self.per_url = per_url
        self.max_idle = max_idle
        self.max_urls = max_urls
        self.idle_seconds = idle_seconds
        self.resolutions = Resolutions()
        self._lock = threading.Lock()
        self._idle: OrderedDict[_PoolKey, list[_Conn]] = OrderedDict()
        self._idle_count = 0

    def idle(self) -> int:
        """Connections kept for reuse right now."""
        with self._lock:
            return self._idle_count

    def close(self) -> None:
        """Forgets cached DNS answers and closes every pooled connection."""
        self.resolutions.clear()
        with self._lock:
            conns = [conn for pooled in self._idle.values() for conn in pooled]
            self._idle.clear()
            self._idle_count = 0
        for conn in conns:
            conn.close()

    def checkout(self, key: _PoolKey) -> _Conn | None:
        """The newest idle connection for `key` that is still usable, if any."""
        while True:
            with self._lock:
                conns = self._idle.get(key)
                if not conns:
                    return None
                conn = conns.pop()
                self._idle_count -= 1
            # Always asked, however recently used: bytes nobody asked for (a late second response)
            # would otherwise be read as the next request's answer.
            if time.monotonic() - conn.idle_since < self.idle_seconds and not conn.dropped():
                return conn
            conn.close()

    def checkin(self, key: _PoolKey, conn: _Conn) -> None:
        """Keeps `conn` for the next request to `key`, within the caps; closes what they leave out."""
        now = time.monotonic()
        conn.idle_since = now
        closing: list[_Conn] = []
        with self._lock:
            conns = self._idle.get(key)
            if conns is None:
                conns = self._idle[key] = []
            else:
                self._idle.move_to_end(key)
            if len(conns) < self.per_url:
                conns.append(conn)
                self._idle_count += 1
            else:
                closing.append(conn)
            # The least recently used URLs give way first: beyond the caps, or idle too long.
            while self._idle:
                oldest_key, oldest = next(iter(self._idle.items()))
                over = self._idle_count > self.max_idle or len(self._idle) > self.max_urls
                if oldest and not over and oldest[-1].idle_since > now - self.idle_seconds:
                    break
                if not oldest:
                    if oldest_key == key:
                        break
                    del self._idle[oldest_key]
                    continue
                closing.append(oldest.pop(0))
                self._idle_count -= 1
        for old in closing:
            old.close()

    def request(
        self,
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
        deadline = started + policy.total_timeout
        target = target_of(url, policy.allow_http)
        addresses = checked_addresses(target, policy, self.resolutions, deadline, resolver)
        message = _request_bytes(method, target, headers, body)
        failure: OutboundError | None = None
        for ip in addresses:
            key = (target.scheme, ip, target.port, target.host, target.path)
            conn = self.checkout(key)
            if conn is not None:
                try:
                    return _exchange(self, key, conn, True, method, message, policy, deadline, started)
                except _Stale:
                    pass  # the receiver had dropped the idle connection: once more on a new one
            try:
                conn = _connect(target, ip, policy, deadline)
            except _ConnectFailed as exc:
                # Nothing was sent yet, so the next address of the same name is safe to try.
                failure = exc.error
                continue
            return _exchange(self, key, conn, False, method, message, policy, deadline, started)
        if failure is None:
            raise _too_slow(policy)
        raise failure


# The process's transport: its pool outlives an invocation, so warm Lambdas keep their connections.
_transport = Transport()
request = _transport.request


def clear_caches() -> None:
    """Forget cached DNS answers and close every pooled connection (tests; never needed in production)."""
    _transport.close()
    target_of.cache_clear()


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


def _connect(target: Target, ip: str, policy: OutboundPolicy, deadline: float) -> _Conn:
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
            sock = _handshake(sock, target.host, policy.ca_file, until)
    except OSError as exc:
        sock.close()
        raise _transport_error(exc, deadline, policy, connecting=True) from None
    return _Conn(sock)


def _handshake(sock: socket.socket, server_hostname: str, ca_file: str | None, until: float) -> socket.socket:
    """TLS with SNI and certificate verification for the name, bounded as a whole by `until`."""
    context = tls_context(ca_file)
    tls = context.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
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
    method: str, target: Target, headers: Mapping[str, str] | None, body: bytes | None
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
    pool: Transport,
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
            pool.checkin(key, conn)
        else:
            conn.close()
    elapsed_ms = int((time.monotonic() - started) * 1000)
    return Response(status=status, headers=headers, body=body, elapsed_ms=elapsed_ms)
