"""Outbound HTTP against hostile servers on 127.0.0.1: every attempt ends by its deadline with a reason
as the delivery log records it, nothing the policy forbids is reached, and nothing is left over.

Each server is a raw loopback socket scripted to misbehave in one way, for at most SERVER_SECONDS.
The requests have a 0.5 s deadline: where a server is slow on purpose, the test checks that the
request ended while the server was still going (the deadline ended it, not the server), which needs
no clock. Afterwards every server thread is joined and the test counts what the client kept: pooled
connections, open file descriptors, threads.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from tests.unit.conftest import Pki, delivery_record
from webhooks import delivery, queues, safe_http
from webhooks.delivery import Deliverer, post
from webhooks.hooks import Hook
from webhooks.outbound_policy import OutboundError, OutboundPolicy
from webhooks.safe_http import Transport
from webhooks.settings import Settings

SERVER_SECONDS = 10.0
POLICY = OutboundPolicy(
    allow_http=True, allow_private=True, connect_timeout=0.4, total_timeout=0.5, max_body=1024
)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

Behaviour = Callable[["Hostile", socket.socket], None]


# --------------------------------------------------------------------------------------------------
# The servers


def read_request(conn: socket.socket, *, body: bool = True) -> bytes:
    """One request's head (and Content-Length body unless `body` is False); b"" at the end."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65_536)
        if not chunk:
            return b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if body:
        length = next(
            (
                int(v)
                for n, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
                if n.lower() == b"content-length"
            ),
            0,
        )
        while len(rest) < length:
            chunk = conn.recv(65_536)
            if not chunk:
                break
            rest += chunk
    return head


class Hostile:
    """A loopback server running `behaviour` on each connection (at most 5), each in its own thread,
    for at most SERVER_SECONDS; `tls` wraps accepted sockets first (the handshake is the behaviour's
    to make or stall)."""

    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour = behaviour
        self.tls = tls
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # so that the acceptor sees `stop` soon
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        self.requests = 0
        self.threads: list[threading.Thread] = []
        self.accepted: list[socket.socket] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stop.is_set() and self.connections < 5:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self.accepted.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, conn: socket.socket) -> None:
        conn.settimeout(SERVER_SECONDS)
        try:
            if self.tls is not None:
                raw, conn = conn, self.tls.wrap_socket(conn, server_side=True)
                self.accepted[self.accepted.index(raw)] = conn
            self.behaviour(self, conn)
        except (OSError, ValueError):
            pass  # the client hung up, as it should
        finally:
            conn.close()

    def running(self) -> bool:
        """Whether a connection's behaviour is still going (it has not given up or finished)."""
        return any(thread.is_alive() for thread in self.threads)

    def url(self, path: str = "/hook", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.acceptor.join(SERVER_SECONDS)
        for conn in self.accepted:  # wakes a behaviour waiting for a request that is not coming
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(SERVER_SECONDS)


def answer(data: bytes, *, then_close: bool = False) -> Behaviour:
    def behave(server: Hostile, conn: socket.socket) -> None:
        while read_request(conn):
            server.requests += 1
            conn.sendall(data)
            if then_close:
                return

    return behave


def stall_after(data: bytes = b"", *, read_body: bool = True) -> Behaviour:
    """Reads the request, writes `data`, then holds the connection open without a word."""

    def behave(server: Hostile, conn: socket.socket) -> None:
        if read_request(conn, body=read_body):
            server.requests += 1
            conn.sendall(data)
            server.stop.wait(SERVER_SECONDS)

    return behave


def trickle(data: bytes, every: float) -> Behaviour:
    def behave(server: Hostile, conn: socket.socket) -> None:
        if read_request(conn):
            server.requests += 1
            for byte in data:
                conn.sendall(bytes([byte]))
                if server.stop.wait(every):
                    return

    return behave


def endless_chunks(server: Hostile, conn: socket.socket) -> None:
    if read_request(conn):
        server.requests += 1
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while not server.stop.wait(0.001):
            conn.sendall(b"400\r\n" + b"e" * 1024 + b"\r\n")


def interim_flood(server: Hostile, conn: socket.socket) -> None:
    if read_request(conn):
        server.requests += 1
        conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n" * 1000 + OK)


def reset(server: Hostile, conn: socket.socket) -> None:
    if read_request(conn):
        server.requests += 1
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def answer_then_stray(stray: bytes, delay: float) -> Behaviour:
    """Answers each request with its path's last segment; after the server's very first answer (at
    once, or `delay` later) writes `stray`, which nobody asked for."""

    def behave(server: Hostile, conn: socket.socket) -> None:
        while head := read_request(conn):
            server.requests += 1
            first = server.requests == 1
            name = head.split(b" ", 2)[1].rsplit(b"/", 1)[-1]
            reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(name), name)
            if first and not delay:
                conn.sendall(reply + stray)
            else:
                conn.sendall(reply)
            if first and delay:
                server.stop.wait(delay)
                conn.sendall(stray)

    return behave


def tls_stall(server: Hostile, conn: socket.socket) -> None:
    conn.recv(65_536)  # the ClientHello, never answered
    server.stop.wait(SERVER_SECONDS)


def tls_answer(server: Hostile, conn: socket.socket) -> None:
    assert isinstance(conn, ssl.SSLSocket)
    answer(OK)(server, conn)


# --------------------------------------------------------------------------------------------------
# Counting what is left over


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settles(probe: Callable[[], int], expected: int) -> bool:
    """Whether `probe()` comes to `expected` (threads and sockets of a closed server take a moment)."""
    done = threading.Event()
    for _ in range(200):
        if probe() == expected:
            return True
        done.wait(0.01)
    return probe() == expected


@dataclass
class Run:
    transport: Transport
    connected: list[tuple[str, int]]
    sentinel: socket.socket  # an internal address nothing may reach

    @property
    def sentinel_port(self) -> int:
        return int(self.sentinel.getsockname()[1])

    def sentinel_reached(self) -> bool:
        self.sentinel.setblocking(False)
        try:
            conn, _ = self.sentinel.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True


@pytest.fixture
def run(connections: list[tuple[str, int]]) -> Iterator[Run]:
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    sentinel = socket.create_server(("127.0.0.1", 0))
    transport = Transport()
    yield Run(transport, connections, sentinel)
    sentinel.close()
    transport.close()

    # Threads of this test, not a count: one that an earlier test left (a state machine's) may end meanwhile.
    def started_here() -> int:
        return len(set(threading.enumerate()) - threads_before)

    assert settles(started_here, 0), "a thread was left running"
    assert settles(open_fds, fds_before), "a socket or file was left open"


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    made: list[Hostile] = []

    def start(behaviour: Behaviour, tls: ssl.SSLContext | None = None) -> Hostile:
        server = Hostile(behaviour, tls)
        made.append(server)
        return server

    yield start
    for server in made:
        server.close()


def outcome(
    transport: Transport, url: str, policy: OutboundPolicy = POLICY, body: bytes = b"payload", **kwargs: Any
) -> str:
    """What the delivery log would record: the answer's status, or the failure's reason."""
    try:
        response = transport.request("POST", url, body=body, policy=policy, **kwargs)
    except OutboundError as exc:
        return f"{exc.kind}: {exc}"
    return f"HTTP {response.status} {response.body[:20]!r}"


# --------------------------------------------------------------------------------------------------
# One misbehaviour each


@dataclass(frozen=True)
class Case:
    behaviour: Behaviour
    expected: str
    slow: bool = False  # the server would hold out past the deadline


CASES = {
    "never-answers": Case(stall_after(), "timeout: no complete response within 0.5 s", slow=True),
    "trickles-a-byte-a-second": Case(
        trickle(OK, every=1.0), "timeout: no complete response within 0.5 s", slow=True
    ),
    "1-MB-of-headers": Case(
        answer(b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 1_048_576 + b"\r\n\r\n"),
        "protocol: the response head is too large",
    ),
    # Cut at max_body (1 KiB here) and the connection closed: the server's "never ends" ends there.
    "endless-chunked-body": Case(endless_chunks, "HTTP 200 b'eeeeeeeeeeeeeeeeeeee'"),
    "bad-chunk-size-letters": Case(
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n"),
        "protocol: the response is not valid HTTP/1.1: illegal chunk header: bytearray(b'zz\\r\\n')",
    ),
    "bad-chunk-size-negative": Case(
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n"),
        "protocol: the response is not valid HTTP/1.1: illegal chunk header: bytearray(b'-1\\r\\n')",
    ),
    "bad-chunk-size-huge": Case(
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 40 + b"\r\nx\r\n"),
        "protocol: the response is not valid HTTP/1.1: illegal chunk header",
    ),
    "content-length-and-transfer-encoding": Case(
        answer(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        ),
        "protocol: the response has both Content-Length and Transfer-Encoding",
    ),
    "two-different-content-lengths": Case(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\nok"),
        "protocol: the response is not valid HTTP/1.1: conflicting Content-Length headers",
    ),
    "http-1.0-no-length-then-close": Case(
        answer(b"HTTP/1.0 200 OK\r\n\r\nread to the close", then_close=True), "HTTP 200 b'read to the close'"
    ),
    "100-continue-then-nothing": Case(
        stall_after(b"HTTP/1.1 100 Continue\r\n\r\n"), "timeout: no complete response within 0.5 s", slow=True
    ),
    "a-thousand-1xx": Case(interim_flood, "protocol: the response has too many interim (1xx) responses"),
    "closes-mid-body": Case(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..", then_close=True),
        "protocol: the response is not valid HTTP/1.1: peer closed connection without sending complete"
        " message body (received 10 bytes, expected 100)",
    ),
    "resets": Case(reset, "connect: connection reset"),
    "status-600": Case(
        answer(b"HTTP/1.1 600 Six\r\nContent-Length: 0\r\n\r\n"),
        "protocol: the response status 600 is not an HTTP status (100 to 599)",
    ),
    "status-999": Case(
        answer(b"HTTP/1.1 999 Nine\r\nContent-Length: 0\r\n\r\n"),
        "protocol: the response status 999 is not an HTTP status (100 to 599)",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_answer_ends_by_the_deadline_with_a_clear_reason_leaving_nothing_over(
    run: Run, hostile: Callable[..., Hostile], case: Case
) -> None:
    server = hostile(case.behaviour)

    result = outcome(run.transport, server.url())
    ended_first = server.running()

    assert result == case.expected or (
        case.expected.endswith("chunk header") and result.startswith(case.expected)
    )
    if case.slow:
        assert ended_first, "the server gave up before the request did: the deadline was not what ended it"
    assert run.transport.idle() == 0  # no connection that misbehaved is kept
    assert run.connected == [("127.0.0.1", server.port)]
    server.close()


def test_answer_before_the_body_was_read_is_returned_or_a_clear_failure(
    run: Run, hostile: Callable[..., Hostile]
) -> None:
    # A server that answers and hangs up while a large body is still being sent: the answer is read
    # when it arrived first, else the reset is the reason; never a hang, never a second send.
    server = hostile(
        answer(b"HTTP/1.1 413 Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", then_close=True)
    )

    result = outcome(run.transport, server.url(), body=b"b" * 4_000_000)

    assert result in (
        "HTTP 413 b''",
        "connect: connection reset",
        "connect: the server closed the connection while the request was sent",
    )
    assert server.connections == 1
    assert run.transport.idle() == 0


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("to", ["sentinel", "metadata"])
def test_redirect_to_an_internal_address_is_returned_never_followed(
    run: Run, hostile: Callable[..., Hostile], status: int, to: str
) -> None:
    location = (
        f"http://127.0.0.1:{run.sentinel_port}/internal"
        if to == "sentinel"
        else "http://169.254.169.254/latest/meta-data/"
    )
    server = hostile(
        answer(
            b"HTTP/1.1 %d Moved\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % (status, location.encode())
        )
    )

    assert outcome(run.transport, server.url()) == f"HTTP {status} b''"
    assert run.connected == [("127.0.0.1", server.port)]
    assert not run.sentinel_reached()
    assert server.requests == 1


@pytest.mark.parametrize("delay", [0.0, 0.05], ids=["stray-bytes-right-after", "second-response-50ms-later"])
def test_bytes_after_a_response_never_reach_a_later_request(
    run: Run, hostile: Callable[..., Hostile], delay: float
) -> None:
    server = hostile(answer_then_stray(b"HTTP/1.1 299 Stray\r\nContent-Length: 5\r\n\r\nstray", delay))

    first = outcome(run.transport, server.url("/tenant/a"))
    threading.Event().wait(delay * 4)  # whatever was going to arrive, has
    later = [outcome(run.transport, server.url(f"/tenant/{name}")) for name in "abab"]

    assert first == "HTTP 200 b'a'"
    assert later == ["HTTP 200 b'a'", "HTTP 200 b'b'", "HTTP 200 b'a'", "HTTP 200 b'b'"]
    assert server.connections == 3  # the tainted connection was dropped; one per path since


def test_leftover_on_one_paths_connection_never_reaches_another_path(
    run: Run, hostile: Callable[..., Hostile]
) -> None:
    # /tenant/b asks before the leftover of /tenant/a arrives: no check can see it yet, so the two
    # paths must not share a connection at all.
    server = hostile(answer_then_stray(b"HTTP/1.1 299 Stray\r\nContent-Length: 5\r\n\r\nstray", 0.05))

    answers = [outcome(run.transport, server.url(f"/tenant/{name}")) for name in "ab"]

    assert answers == ["HTTP 200 b'a'", "HTTP 200 b'b'"]
    assert server.connections == 2


# --------------------------------------------------------------------------------------------------
# TLS


def server_context(pki: Pki, cert_file: Any) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, pki.key_file)
    return context


@pytest.mark.parametrize(
    ("name", "certificate", "expected"),
    [
        ("hooks.example.test", "valid", "HTTP 200 b'ok'"),
        (
            "other.example.test",
            "valid",
            "tls: TLS certificate rejected: Hostname mismatch, certificate is not valid for"
            " 'other.example.test'.",
        ),
        ("hooks.example.test", "expired", "tls: TLS certificate rejected: certificate has expired"),
    ],
    ids=["valid", "certificate-for-another-name", "expired-certificate"],
)
def test_tls_certificate_must_be_valid_now_and_for_the_name(
    run: Run, hostile: Callable[..., Hostile], pki: Pki, name: str, certificate: str, expected: str
) -> None:
    cert = pki.cert_file if certificate == "valid" else pki.expired_cert_file
    server = hostile(tls_answer, tls=server_context(pki, cert))
    policy = replace(POLICY, ca_file=str(pki.ca_file))

    result = outcome(
        run.transport, server.url(scheme="https", host=name), policy, resolver=lambda h, p: ["127.0.0.1"]
    )

    assert result == expected
    assert server.requests == (1 if certificate == "valid" and name == "hooks.example.test" else 0)
    assert run.transport.idle() == (1 if result.startswith("HTTP") else 0)


def test_stalled_tls_handshake_ends_by_the_connect_deadline(
    run: Run, hostile: Callable[..., Hostile]
) -> None:
    server = hostile(tls_stall)

    result = outcome(
        run.transport,
        server.url(scheme="https", host="hooks.example.test"),
        resolver=lambda h, p: ["127.0.0.1"],
    )

    assert result == "timeout: connection timed out"
    assert server.running()  # still stalling: the deadline ended the attempt
    assert run.transport.idle() == 0


# --------------------------------------------------------------------------------------------------
# Retry-After of any shape, and a batch with good and hostile hooks


@pytest.mark.parametrize(
    ("value", "asked"),
    [
        ("9" * 5_000, 43_200),
        ("-" + "9" * 5_000, None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 43_200),
        ("Fri, 31 Dec 99999 23:59:59 GMT", None),
        ("soon, please", None),
        ("1" + "0" * 30, 43_200),
        ("120", 120),
    ],
    ids=["5000-digits", "negative", "year-9999", "year-99999", "junk", "huge", "plain"],
)
@pytest.mark.usefixtures("connections")
def test_retry_after_of_any_shape_is_read_within_the_cap(
    hostile: Callable[..., Hostile], make_hook: Callable[..., Hook], value: str, asked: int | None
) -> None:
    server = hostile(
        answer(b"HTTP/1.1 429 Slow Down\r\nRetry-After: %s\r\nContent-Length: 0\r\n\r\n" % value.encode())
    )
    sent = post(make_hook(url=server.url()), "msg_1", {"x": 1}, POLICY)
    assert (sent.status, sent.error, sent.retry_after) == (429, "HTTP 429", asked)


class Store:
    def __init__(self, hooks: list[Hook]) -> None:
        self.hooks = {(h.account, h.id): h for h in hooks}

    def get_many(self, keys: Any) -> dict[tuple[str, str], Hook]:
        return {k: self.hooks[k] for k in set(keys) if k in self.hooks}

    def record_outcomes(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_status(self, *args: Any, **kwargs: Any) -> bool:
        return True


class Log:
    def __init__(self) -> None:
        self.attempts: dict[str, str] = {}

    def write_attempts(self, attempts: list[Any]) -> None:
        self.attempts.update({a.delivery_id: a.error or a.outcome for a in attempts})

    def write_failed(self, failures: list[Any]) -> None:
        pass


class Limiter:
    def take(self, account: str, hook_id: str, limit: int, wanted: int) -> tuple[int, float]:
        return wanted, 0.0


def test_batch_with_hostile_hooks_still_delivers_to_the_good_ones(
    run: Run,
    hostile: Callable[..., Hostile],
    make_hook: Callable[..., Hook],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servers = {
        "good": hostile(answer(OK)),
        "retry-after": hostile(
            answer(b"HTTP/1.1 503 Busy\r\nRetry-After: " + b"9" * 5_000 + b"\r\nContent-Length: 0\r\n\r\n")
        ),
        "never-answers": hostile(stall_after()),
        "status-999": hostile(answer(b"HTTP/1.1 999 Nine\r\nContent-Length: 0\r\n\r\n")),
        "resets": hostile(reset),
        "redirect": hostile(
            answer(b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n")
        ),
    }
    hooks = [make_hook(id=name, url=server.url()) for name, server in servers.items()]
    settings = Settings.from_env({**env, "ALLOW_HTTP_TARGETS": "true", "ALLOW_PRIVATE_TARGETS": "true"})
    log = Log()
    deliverer = Deliverer(settings, store=Store(hooks), log=log, limiter=Limiter(), policy=POLICY)  # type: ignore[arg-type]
    monkeypatch.setattr(queues, "change_visibility", lambda url, delays: None)
    monkeypatch.setattr(queues, "send", lambda url, messages: [])
    records = [delivery_record(name, name, {"id": name}) for name in servers]

    try:
        answer_ = deliverer.process(records)
    finally:
        deliverer.pool.shutdown()
        deliverer.log_pool.shutdown()
        delivery.metrics.clear_metrics()
        safe_http.clear_caches()

    failed = {item["itemIdentifier"] for item in answer_["batchItemFailures"]}
    assert failed == set(servers) - {"good"}
    assert log.attempts == {
        "msg_good": "succeeded",
        "msg_retry-after": "HTTP 503",
        "msg_never-answers": "no complete response within 0.5 s",
        "msg_status-999": "the response status 999 is not an HTTP status (100 to 599)",
        "msg_resets": "connection reset",
        "msg_redirect": "HTTP 302",
    }
    assert servers["never-answers"].running()  # the batch did not wait for it
