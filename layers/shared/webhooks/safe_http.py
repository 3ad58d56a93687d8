"""The one way this service talks to a customer's server: deliveries, verification files, the test tool.

This is the transport: how a request is made once the outbound policy (outbound_policy) has said
what may be reached. The name is resolved and vetted there, within the request's deadline; the
socket is opened here to that checked address, with SNI and certificate verification for the name.

It sits on the delivery hot path, so each request is one write and its answer is read straight off
the socket, framed by h11 (sans-I/O: the sockets, the pool and the deadline stay ours), with every
read bounded by the request's deadline. Connections are pooled per URL and kept alive across calls
and across warm Lambda invocations. A connection goes back to the pool only when its response was
read to its framed end with nothing after it, and it is checked again before reuse; a request is
sent again only when a reused connection refused its first byte.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

import h11

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
        exchange = _start(method, target, headers, body)
        failure: OutboundError | None = None
        for ip in addresses:
            key = (target.scheme, ip, target.port, target.host, target.path)
            conn = self.checkout(key)
            if conn is not None:
                try:
                    return _exchange(self, key, conn, True, method, exchange, policy, deadline, started)
                except _Stale:
                    pass  # the receiver had dropped the idle connection: once more on a new one
            try:
                conn = _connect(target, ip, policy, deadline)
            except _ConnectFailed as exc:
                # Nothing was sent yet, so the next address of the same name is safe to try.
                failure = exc.error
                continue
            return _exchange(self, key, conn, False, method, exchange, policy, deadline, started)
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
# Requests and responses: HTTP/1.1 framing by h11; the deadline, the caps and reuse decided here

# Header fields that are the transport's: a caller-supplied Host would defeat connecting by address,
# and a stray Content-Length or Transfer-Encoding would desynchronise a kept-alive connection.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# The bytes a server may send before the final response's head is complete (interim responses
# included); read _HEAD_READ at a time, so a body arriving with the head is not counted against it.
_MAX_HEAD = 65_536
_HEAD_READ = 16_384
_MAX_FIELDS = 100
_MAX_INTERIM = 10
_MAX_REASON = 200


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; a repeated field's values joined with ", "."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # names in lower case

    @classmethod
    def of(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        fields: dict[str, str] = {}
        for raw_name, raw_value in raw:  # h11 gives names in lower case
            name, value = raw_name.decode("ascii"), raw_value.decode("latin-1")
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
        return cls(fields)

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


def _start(
    method: str, target: Target, headers: Mapping[str, str] | None, body: bytes | None
) -> tuple[h11.Connection, bytes]:
    """A client connection state and the request's bytes (line, headers, body), sent in one write.
    Raises ValueError for a header h11 refuses to write, before anything is connected."""
    # As ASCII bytes, as h11 would encode them: it still validates every name and value, but skips
    # converting each (a third of the cost of writing a request's head, on the delivery hot path).
    fields = [(b"Host", target.host_header.encode("ascii"))]
    fields += [
        (name.encode("ascii"), value.encode("ascii"))
        for name, value in (headers or {}).items()
        if name.lower() not in _FRAMING
    ]
    if body is not None or method in _BODY_METHODS:
        fields.append((b"Content-Length", str(len(body or b"")).encode("ascii")))
    state = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD + _HEAD_READ)
    try:
        message = state.send(h11.Request(method=method, target=target.path, headers=fields))
        if body:
            message += state.send(h11.Data(data=body))
        message += state.send(h11.EndOfMessage())
    except h11.LocalProtocolError as exc:
        raise ValueError(f"the request cannot be sent: {exc}") from None
    return state, message


def _invalid(exc: h11.RemoteProtocolError) -> _Malformed:
    return _Malformed(f"the response is not valid HTTP/1.1: {str(exc)[:_MAX_REASON]}")


def _read(
    sock: socket.socket, state: h11.Connection, policy: OutboundPolicy, deadline: float
) -> tuple[int, Headers, bytes, bool]:
    """(status, headers, body, whether the connection may carry another request) of the final
    response; every socket read bounded by the deadline (a server trickling a byte at a time still
    ends there), the body by max_body."""
    limit = policy.max_body
    received = 0
    interim = 0
    status = 0
    fields = Headers({})
    body = bytearray()
    while True:
        try:
            event = state.next_event()
        except h11.RemoteProtocolError as exc:
            raise _invalid(exc) from None
        if event is h11.NEED_DATA:
            sock.settimeout(_remaining(deadline, policy))
            data = sock.recv(_HEAD_READ if not status else _READ_CHUNK)
            if not data and not received:
                raise _NoResponse
            received += len(data)
            if not status and received > _MAX_HEAD:
                raise _Malformed("the response head is too large")
            state.receive_data(data)
        elif isinstance(event, h11.InformationalResponse):
            interim += 1
            if interim > _MAX_INTERIM:
                raise _Malformed("the response has too many interim (1xx) responses")
        elif isinstance(event, h11.Response):
            status = event.status_code
            if status >= 600:
                raise _Malformed(f"the response status {status} is not an HTTP status (100 to 599)")
            if len(event.headers) > _MAX_FIELDS:
                raise _Malformed("the response has too many header fields")
            fields = Headers.of(list(event.headers))
            if "transfer-encoding" in fields and "content-length" in fields:
                # How responses get smuggled (RFC 9112 6.3: "ought to be handled as an error").
                raise _Malformed("the response has both Content-Length and Transfer-Encoding")
        elif isinstance(event, h11.Data):
            room = limit - len(body)
            if len(event.data) > room:
                body += event.data[:room]
                return status, fields, bytes(body), False
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            # Reused only when both sides are done with nothing after the response: bytes nobody
            # asked for would be read as the next request's answer.
            keep = (
                state.our_state is h11.DONE and state.their_state is h11.DONE and not state.trailing_data[0]
            )
            return status, fields, bytes(body), keep
        else:  # ConnectionClosed: h11 reports the end of a body that runs to the close
            return status, fields, bytes(body), False


def _exchange(
    pool: Transport,
    key: _PoolKey,
    conn: _Conn,
    reused: bool,
    method: str,
    request: tuple[h11.Connection, bytes],
    policy: OutboundPolicy,
    deadline: float,
    started: float,
) -> Response:
    """One request on `conn`, which then goes back to the pool if it may carry another, else is closed."""
    sock = conn.sock
    state, message = request
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
        status, headers, body, keep = _read(sock, state, policy, deadline)
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
