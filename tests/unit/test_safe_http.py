"""webhooks.safe_http: what may be called, how it is connected to, and how slow or hostile receivers end.

Only 127.0.0.1 (and ::1 when present) is ever connected to; every other name goes through a stub
resolver, and the hostile corpus runs with connections made impossible.
"""

from __future__ import annotations

import http.client
import io
import random
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.unit.conftest import Pki, free_port
from webhooks import safe_http
from webhooks.errors import InvalidInput
from webhooks.outbound_policy import OutboundError, OutboundPolicy, UnsafeUrl, check_url
from webhooks.safe_http import request

PUBLIC_IP = "93.184.215.14"
STRICT = OutboundPolicy()
LOCAL = OutboundPolicy(allow_http=True, allow_private=True, connect_timeout=2.0, total_timeout=5.0)


# --------------------------------------------------------------------------------------------------
# Helpers and fixtures


class StubResolver:
    """Answers from a table; unknown names fail like getaddrinfo does. Records every question."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


class RebindingResolver(StubResolver):
    """A public answer the first time, loopback ever after: the classic DNS rebinding attack."""

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return [PUBLIC_IP] if len(self.calls) == 1 else ["127.0.0.1"]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


Respond = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server
    requests_on_connection = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests_on_connection += 1
        with self.server.lock:
            self.server.seen.append(
                Seen(self.command, self.path, dict(self.headers.items()), body, self.client_address[1])
            )
        self.server.respond(self)

    do_GET = do_POST = do_HEAD = _any


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, respond: Respond, host: str = "127.0.0.1", family: int = socket.AF_INET) -> None:
        self.address_family = family
        self.respond = respond
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        super().__init__((host, 0), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup of the address; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up on purpose are the point of several tests

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def client_ports(self) -> set[int]:
        with self.lock:
            return {seen.client_port for seen in self.seen}


def reply(
    handler: Handler, status: int = 200, body: bytes = b"ok", headers: tuple[tuple[str, str], ...] = ()
) -> None:
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def trickle(handler: Handler, data: bytes, every: float = 0.05, limit: float = 3.0) -> None:
    stop = time.monotonic() + limit
    for byte in data:
        if time.monotonic() > stop:
            break
        try:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
        except OSError:
            break
        time.sleep(every)
    handler.close_connection = True


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    safe_http.clear_caches()
    yield
    safe_http.clear_caches()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(
        respond: Respond = reply,
        host: str = "127.0.0.1",
        family: int = socket.AF_INET,
        tls: ssl.SSLContext | None = None,
    ) -> Server:
        server = Server(respond, host, family)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server

    yield start
    safe_http.clear_caches()  # closes kept-alive connections so the handler threads end
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Like ``connections``, but nothing is ever connected: a leak shows up as a recorded address."""
    attempted: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        attempted.append(address)
        raise ConnectionRefusedError(111, "refused by the test")

    monkeypatch.setattr(safe_http, "_create_connection", refuse)
    return attempted


class Sentinel:
    """A listening loopback socket that counts the connections it received."""

    def __init__(self) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.setblocking(False)
        self.port = int(self.listener.getsockname()[1])

    def accepted(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def sentinel() -> Iterator[Sentinel]:
    listening = Sentinel()
    yield listening
    listening.listener.close()


# --------------------------------------------------------------------------------------------------
# The hostile corpus: refused by check_url and by request, before any connection

HOSTILE_NAMES = {
    "hooks.example.com": [PUBLIC_IP],
    "example.com": [PUBLIC_IP],
    "internal.example.test": ["10.1.2.3"],
    "mixed.example.test": [PUBLIC_IP, "192.168.0.10"],
    "metadata.example.test": ["169.254.169.254"],
    "v6-loopback.example.test": ["::1"],
    "v6-mapped.example.test": ["::ffff:10.0.0.1"],
    "nat64.example.test": ["64:ff9b::7f00:1"],
    "cgnat.example.test": ["100.64.1.1"],
    "localhost": ["127.0.0.1"],
    "sub.localhost": ["127.0.0.1"],
}

HOSTILE_URLS = [
    # IPv4 literals of every forbidden range
    ("this-network", "https://0.0.0.0:{port}/"),
    ("loopback", "https://127.0.0.1:{port}/"),
    ("loopback-other", "https://127.8.9.10/"),
    ("rfc1918-10", "https://10.0.0.1/"),
    ("rfc1918-172", "https://172.16.0.1/"),
    ("rfc1918-172-top", "https://172.31.255.254/"),
    ("rfc1918-192", "https://192.168.1.1/"),
    ("metadata", "https://169.254.169.254/latest/meta-data/"),
    ("link-local", "https://169.254.0.1/"),
    ("cgnat", "https://100.64.0.1/"),
    ("multicast", "https://224.0.0.1/"),
    ("multicast-ssdp", "https://239.255.255.250/"),
    ("reserved", "https://240.0.0.1/"),
    ("broadcast", "https://255.255.255.255/"),
    ("benchmarking", "https://198.18.0.1/"),
    ("documentation-1", "https://192.0.2.1/"),
    ("documentation-2", "https://198.51.100.7/"),
    ("documentation-3", "https://203.0.113.9/"),
    ("ietf-protocol", "https://192.0.0.8/"),
    ("loopback-trailing-dot", "https://127.0.0.1.:{port}/"),
    # IPv6 literals, embedded IPv4 forms included
    ("v6-loopback", "https://[::1]:{port}/"),
    ("v6-unspecified", "https://[::]/"),
    ("v6-ula", "https://[fc00::1]/"),
    ("v6-ula-fd", "https://[fd12:3456::1]/"),
    ("v6-link-local", "https://[fe80::1]/"),
    ("v6-metadata", "https://[fd00:ec2::254]/"),
    ("v6-multicast", "https://[ff02::1]/"),
    ("v6-documentation", "https://[2001:db8::1]/"),
    ("v6-discard", "https://[100::1]/"),
    ("v4-mapped-loopback", "https://[::ffff:127.0.0.1]:{port}/"),
    ("v4-mapped-metadata-hex", "https://[::ffff:a9fe:a9fe]/"),
    ("v4-compatible", "https://[::127.0.0.1]/"),
    ("nat64-metadata", "https://[64:ff9b::a9fe:a9fe]/"),
    ("nat64-local-use", "https://[64:ff9b:1::a00:1]/"),
    ("6to4-loopback", "https://[2002:7f00:1::1]/"),
    ("teredo", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/"),
    ("v6-zone-id", "https://[fe80::1%25eth0]/"),
    # Odd IPv4 spellings
    ("decimal", "https://2130706433:{port}/"),
    ("octal", "https://0177.0.0.1:{port}/"),
    ("hex-dotted", "https://0x7f.0.0.1:{port}/"),
    ("hex-whole", "https://0x7f000001/"),
    ("short", "https://127.1:{port}/"),
    ("octal-whole", "https://017700000001/"),
    ("zero", "https://0/"),
    ("percent-encoded-host", "https://%31%32%37.0.0.1/"),
    # User info and other URL tricks
    ("userinfo", "https://user:pass@example.com/"),
    ("userinfo-before-ip", "https://hooks.example.com@127.0.0.1:{port}/"),
    ("user-only", "https://user@hooks.example.com/"),
    ("backslash-userinfo", "https://hooks.example.com\\@127.0.0.1/"),
    ("empty-host", "https:///webhook"),
    ("port-zero", "https://hooks.example.com:0/"),
    ("port-too-big", "https://hooks.example.com:65536/"),
    ("too-long", "https://hooks.example.com/" + "a" * 2048),
    ("space", "https://hooks.example.com/a b"),
    ("crlf", "https://hooks.example.com/\r\nX-Injected: 1"),
    ("tab-in-host", "https://hooks.exa\tmple.com/"),
    # Schemes
    ("ftp", "ftp://hooks.example.com/"),
    ("file", "file:///etc/passwd"),
    ("gopher", "gopher://hooks.example.com:70/_x"),
    ("javascript", "javascript:alert(1)"),
    ("no-scheme", "//hooks.example.com/"),
    ("http-not-allowed", "http://hooks.example.com/"),
    # Names whose answers are forbidden
    ("name-private", "https://internal.example.test/"),
    ("name-public-and-private", "https://mixed.example.test/"),
    ("name-metadata", "https://metadata.example.test/"),
    ("name-v6-loopback", "https://v6-loopback.example.test/"),
    ("name-v4-mapped", "https://v6-mapped.example.test/"),
    ("name-nat64", "https://nat64.example.test/"),
    ("name-cgnat", "https://cgnat.example.test/"),
    ("localhost", "https://localhost:{port}/"),
    ("localhost-trailing-dot", "https://localhost.:{port}/"),
    ("localhost-uppercase", "HTTPS://LOCALHOST:{port}/"),
    ("localhost-subdomain", "https://sub.localhost/"),
]


@pytest.mark.parametrize("url", [url for _, url in HOSTILE_URLS], ids=[name for name, _ in HOSTILE_URLS])
def test_hostile_url_is_refused_before_any_connection(
    url: str, no_connections: list[tuple[str, int]], sentinel: Sentinel
) -> None:
    url = url.format(port=sentinel.port)
    resolver = StubResolver(HOSTILE_NAMES)

    with pytest.raises(UnsafeUrl):
        check_url(url, STRICT, resolver)
    with pytest.raises(UnsafeUrl):
        request("POST", url, body=b"secret=1", policy=STRICT, resolver=resolver)

    assert no_connections == []
    assert sentinel.accepted() == 0


def test_corpus_has_at_least_forty_hostile_urls() -> None:
    assert len(HOSTILE_URLS) >= 40


# --------------------------------------------------------------------------------------------------
# Static and DNS checks


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/webhook",
        "https://hooks.example.com:8443/x?y=1#fragment",
        "https://HOOKS.Example.COM./",
        f"https://{PUBLIC_IP}/",
        "https://[2606:4700:4700::1111]/",
    ],
)
def test_public_target_passes_the_check(url: str) -> None:
    check_url(url, STRICT, StubResolver(HOSTILE_NAMES))


def test_international_name_is_resolved_in_its_ascii_form() -> None:
    resolver = StubResolver({"xn--bcher-kva.example": [PUBLIC_IP]})
    check_url("https://Bücher.example/hook", STRICT, resolver)
    assert resolver.calls == [("xn--bcher-kva.example", 443)]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://10.0.0.5/",
        "http://192.168.1.20/",
        "http://[::1]:9000/",
        "http://[fd12::1]/",
        "http://localhost:3000/",
    ],
)
def test_local_policy_allows_loopback_and_private_targets(url: str) -> None:
    check_url(url, LOCAL, StubResolver({"localhost": ["127.0.0.1"]}))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[64:ff9b::a00:1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://2130706433/",
    ],
)
def test_local_policy_still_refuses_metadata_link_local_embedded_and_odd_forms(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url, LOCAL)


def test_every_resolved_address_is_checked_and_the_bad_one_is_named() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url("https://mixed.example.test/", STRICT, StubResolver(HOSTILE_NAMES))
    assert str(refused.value) == "resolves to 192.168.0.10, a private address"


def test_literal_refusal_names_the_address_and_the_reason() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url("https://169.254.169.254/latest/meta-data/", STRICT)
    assert str(refused.value) == "169.254.169.254 is the cloud metadata address"


def test_embedded_ipv4_refusal_says_what_is_embedded() -> None:
    with pytest.raises(UnsafeUrl) as refused:
        check_url("https://[64:ff9b::a9fe:a9fe]/", STRICT)
    assert "NAT64" in str(refused.value)
    assert "169.254.169.254" in str(refused.value)


def test_unsafe_url_is_an_outbound_error_of_kind_unsafe_not_an_api_error() -> None:
    # The API translates it (registration: a 422 on `url`); the policy knows nothing of the API.
    with pytest.raises(UnsafeUrl) as refused:
        check_url("https://10.0.0.1/", STRICT)
    error = refused.value
    assert not isinstance(error, InvalidInput)
    assert isinstance(error, OutboundError)
    assert (error.kind, str(error)) == ("unsafe", "10.0.0.1 is a private address")


def test_unresolvable_name_is_unsafe_at_check_time() -> None:
    with pytest.raises(UnsafeUrl, match=r"^host name does not resolve$"):
        check_url("https://nowhere.example.test/", STRICT, StubResolver())


def test_unresolvable_name_is_a_connect_error_at_send_time() -> None:
    with pytest.raises(OutboundError) as failed:
        request("POST", "https://nowhere.example.test/", policy=STRICT, resolver=StubResolver())
    assert not isinstance(failed.value, UnsafeUrl)
    assert failed.value.kind == "connect"


def test_localhost_is_refused_without_asking_the_resolver() -> None:
    resolver = StubResolver({"localhost": [PUBLIC_IP]})
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_url("https://localhost/", STRICT, resolver)
    assert resolver.calls == []


# --------------------------------------------------------------------------------------------------
# Connecting to the checked address


def test_dns_rebinding_answer_at_send_time_is_refused_without_connecting(
    no_connections: list[tuple[str, int]],
) -> None:
    resolver = RebindingResolver()
    check_url("https://rebind.example.test/hook", STRICT, resolver)

    with pytest.raises(UnsafeUrl, match=r"^resolves to 127\.0\.0\.1, a loopback address$"):
        request("POST", "https://rebind.example.test/hook", body=b"x", policy=STRICT, resolver=resolver)

    assert len(resolver.calls) == 2  # once at registration, once (and only once) at send time
    assert no_connections == []


def test_request_goes_to_the_checked_address_with_the_name_in_host(
    serve: Callable[..., Server], connections: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve()
    asked: list[object] = []
    real_getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, *a, **k: asked.append(host) or real_getaddrinfo(host, *a, **k)
    )
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"]})

    response = request(
        "POST",
        f"http://hooks.example.test:{server.port}/hook?a=1#fragment",
        body=b"payload",
        headers={"Host": "evil.example", "Content-Type": "text/plain"},
        policy=LOCAL,
        resolver=resolver,
    )

    assert response.status == 200
    [seen] = server.seen
    assert seen.headers["Host"] == f"hooks.example.test:{server.port}"
    assert (seen.method, seen.path, seen.body) == ("POST", "/hook?a=1", b"payload")
    assert seen.headers["Content-Type"] == "text/plain"
    assert connections == [("127.0.0.1", server.port)]
    assert "hooks.example.test" not in asked  # the name never reaches the system resolver
    assert resolver.calls == [("hooks.example.test", server.port)]


def test_dns_answer_is_cached_between_requests(serve: Callable[..., Server]) -> None:
    server = serve()
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"]})
    url = f"http://hooks.example.test:{server.port}/"

    for _ in range(3):
        assert request("GET", url, policy=LOCAL, resolver=resolver).status == 200
    assert len(resolver.calls) == 1

    safe_http.clear_caches()
    request("GET", url, policy=LOCAL, resolver=resolver)
    assert len(resolver.calls) == 2


def test_cached_answer_is_checked_again_under_the_callers_policy(serve: Callable[..., Server]) -> None:
    server = serve()
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"]})
    url = f"http://hooks.example.test:{server.port}/"
    request("GET", url, policy=LOCAL, resolver=resolver)

    with pytest.raises(UnsafeUrl):
        request("GET", url, policy=replace(LOCAL, allow_private=False), resolver=resolver)
    assert len(server.seen) == 1


def test_next_checked_address_is_tried_when_the_first_refuses(
    serve: Callable[..., Server], connections: list[tuple[str, int]]
) -> None:
    server = serve()  # listens on 127.0.0.1 only, so 127.0.0.2 refuses
    resolver = StubResolver({"hooks.example.test": ["127.0.0.2", "127.0.0.1"]})

    response = request("GET", f"http://hooks.example.test:{server.port}/", policy=LOCAL, resolver=resolver)

    assert response.status == 200
    assert connections == [("127.0.0.2", server.port), ("127.0.0.1", server.port)]


def test_ipv6_literal_is_connected_with_a_bracketed_host_header(serve: Callable[..., Server]) -> None:
    try:
        server = serve(host="::1", family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")

    response = request("GET", f"http://[::1]:{server.port}/v6", policy=LOCAL)

    assert response.status == 200
    assert server.seen[0].headers["Host"] == f"[::1]:{server.port}"


# --------------------------------------------------------------------------------------------------
# Responses


@pytest.mark.parametrize("to", ["metadata", "loopback"])
def test_redirect_is_returned_and_never_followed(
    serve: Callable[..., Server], connections: list[tuple[str, int]], to: str
) -> None:
    def redirect(handler: Handler) -> None:
        if to == "metadata":
            location = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
        else:
            location = f"http://127.0.0.1:{handler.server.port}/elsewhere"
        reply(handler, 302, b"", (("Location", location),))

    server = serve(redirect)

    response = request("POST", f"http://127.0.0.1:{server.port}/hook", body=b"x", policy=LOCAL)

    assert response.status == 302
    assert response.headers["location"].endswith(("/security-credentials/", "/elsewhere"))
    assert [seen.path for seen in server.seen] == ["/hook"]
    assert connections == [("127.0.0.1", server.port)]


def test_error_status_is_returned_with_case_insensitive_headers(serve: Callable[..., Server]) -> None:
    server = serve(lambda h: reply(h, 503, b"busy", (("Retry-After", "7"),)))

    response = request("POST", f"http://127.0.0.1:{server.port}/", body=b"x", policy=LOCAL)

    assert (response.status, response.body) == (503, b"busy")
    assert response.headers["retry-after"] == response.headers["Retry-After"] == "7"
    assert isinstance(response.elapsed_ms, int)
    assert response.elapsed_ms >= 0


def test_body_is_capped_at_max_body_and_the_connection_is_not_reused(serve: Callable[..., Server]) -> None:
    server = serve(lambda h: reply(h, 200, b"x" * 1_048_576))
    policy = replace(LOCAL, max_body=65_536)

    first = request("GET", f"http://127.0.0.1:{server.port}/big", policy=policy)
    second = request("GET", f"http://127.0.0.1:{server.port}/big", policy=policy)

    assert len(first.body) == len(second.body) == 65_536
    assert len(server.client_ports()) == 2


def test_body_of_exactly_max_body_bytes_keeps_the_connection(serve: Callable[..., Server]) -> None:
    server = serve(lambda h: reply(h, 200, b"y" * 100))
    policy = replace(LOCAL, max_body=100)

    for _ in range(3):
        assert request("GET", f"http://127.0.0.1:{server.port}/", policy=policy).body == b"y" * 100

    assert len(server.client_ports()) == 1


def test_head_request_has_an_empty_body(serve: Callable[..., Server]) -> None:
    server = serve(lambda h: reply(h, 200, b"ignored"))
    response = request("HEAD", f"http://127.0.0.1:{server.port}/", policy=LOCAL)
    assert (response.status, response.body) == (200, b"")


# --------------------------------------------------------------------------------------------------
# Failures


def test_body_trickled_slower_than_the_deadline_times_out(serve: Callable[..., Server]) -> None:
    def slow_body(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.flush()
        trickle(handler, b"z" * 1000)

    server = serve(slow_body)
    policy = replace(LOCAL, total_timeout=0.5)

    started = time.monotonic()
    with pytest.raises(OutboundError) as failed:
        request("GET", f"http://127.0.0.1:{server.port}/", policy=policy)

    assert failed.value.kind == "timeout"
    assert 0.4 <= time.monotonic() - started < 1.5


def test_status_line_trickled_slower_than_the_deadline_times_out(serve: Callable[..., Server]) -> None:
    server = serve(lambda h: trickle(h, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"s" * 200))
    policy = replace(LOCAL, total_timeout=0.5)

    started = time.monotonic()
    with pytest.raises(OutboundError) as failed:
        request("GET", f"http://127.0.0.1:{server.port}/", policy=policy)

    assert failed.value.kind == "timeout"
    assert str(failed.value) == "no complete response within 0.5 s"
    assert 0.4 <= time.monotonic() - started < 1.5


@pytest.fixture
def raw_trickler() -> Iterator[int]:
    """A TCP server that answers any TLS ClientHello with a record header and then one byte per 50 ms."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve_one() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65_536)
            # A handshake record announcing 16 KiB: the client waits for all of it, byte by byte.
            conn.sendall(b"\x16\x03\x03\x40\x00")
            while not stop.wait(0.05):
                try:
                    conn.sendall(b"\x00")
                except OSError:
                    return

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    listener.close()
    thread.join(timeout=2)


def test_tls_handshake_trickled_slower_than_the_deadline_times_out(raw_trickler: int) -> None:
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"]})
    policy = replace(LOCAL, total_timeout=0.5)

    started = time.monotonic()
    with pytest.raises(OutboundError) as failed:
        request("POST", f"https://hooks.example.test:{raw_trickler}/", policy=policy, resolver=resolver)

    assert failed.value.kind == "timeout"
    assert 0.4 <= time.monotonic() - started < 1.5


def test_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(OutboundError) as failed:
        request("POST", f"http://127.0.0.1:{free_port()}/", body=b"x", policy=LOCAL)
    assert (failed.value.kind, str(failed.value)) == ("connect", "connection refused")


def test_connection_closed_without_a_response_is_a_connect_error(serve: Callable[..., Server]) -> None:
    def hang_up(handler: Handler) -> None:
        handler.close_connection = True

    server = serve(hang_up)
    with pytest.raises(OutboundError) as failed:
        request("POST", f"http://127.0.0.1:{server.port}/", body=b"x", policy=LOCAL)
    assert failed.value.kind == "connect"


def test_garbage_instead_of_http_is_a_protocol_error(serve: Callable[..., Server]) -> None:
    def garbage(handler: Handler) -> None:
        handler.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        handler.close_connection = True

    server = serve(garbage)
    with pytest.raises(OutboundError) as failed:
        request("GET", f"http://127.0.0.1:{server.port}/", policy=LOCAL)
    assert failed.value.kind == "protocol"


def test_body_shorter_than_its_content_length_is_a_protocol_error(serve: Callable[..., Server]) -> None:
    def short(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b"only ten..")
        handler.close_connection = True

    server = serve(short)
    with pytest.raises(OutboundError) as failed:
        request("GET", f"http://127.0.0.1:{server.port}/", policy=LOCAL)
    assert failed.value.kind == "protocol"


# --------------------------------------------------------------------------------------------------
# Connection reuse


def test_sequential_requests_reuse_one_kept_alive_connection(serve: Callable[..., Server]) -> None:
    server = serve()
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"]})

    for n in range(20):
        response = request(
            "POST",
            f"http://hooks.example.test:{server.port}/hook",
            body=b"n=%d" % n,
            policy=LOCAL,
            resolver=resolver,
        )
        assert response.status == 200

    assert len(server.seen) == 20
    assert len(server.client_ports()) == 1


def test_concurrent_requests_share_a_bounded_set_of_connections(serve: Callable[..., Server]) -> None:
    server = serve()
    url = f"http://127.0.0.1:{server.port}/hook"

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(lambda n: request("POST", url, body=b"%d" % n, policy=LOCAL).status, range(160))
        )

    assert statuses == [200] * 160
    assert len(server.client_ports()) <= 16


def test_request_the_receiver_read_and_then_hung_up_on_is_not_sent_again(
    serve: Callable[..., Server],
) -> None:
    # The second request reaches the receiver on the kept-alive connection, which reads it and hangs
    # up without a byte of answer: it may have acted on it, so it is a failure, never a second POST.
    def one_request_per_connection(handler: Handler) -> None:
        if handler.requests_on_connection > 1:
            handler.close_connection = True
            return
        reply(handler)

    server = serve(one_request_per_connection)
    url = f"http://127.0.0.1:{server.port}/hook"

    assert request("POST", url, body=b"1", policy=LOCAL).status == 200
    with pytest.raises(OutboundError) as failed:
        request("POST", url, body=b"2", policy=LOCAL)
    assert request("POST", url, body=b"3", policy=LOCAL).status == 200

    assert failed.value.kind == "connect"
    assert str(failed.value) == "the server closed the connection without a response"
    assert [seen.body for seen in server.seen] == [b"1", b"2", b"3"]


class Scripted:
    """A loopback TCP server that reads each request (head and Content-Length body) and answers the
    next scripted bytes; after an answer marked to close, it hangs up. Records what it received."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = int(self.listener.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(5)
                if not self._one_connection(conn):
                    return

    def _one_connection(self, conn: socket.socket) -> bool:
        buffer = b""
        while self.answers:
            while b"\r\n\r\n" not in buffer:
                try:
                    data = conn.recv(65_536)
                except OSError:
                    return False
                if not data:
                    return True
                buffer += data
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                buffer += conn.recv(65_536)
            self.requests.append(head + b"\r\n\r\n" + buffer[:length])
            buffer = buffer[length:]
            answer, close = self.answers.pop(0)
            conn.sendall(answer)
            if close:
                return True
        return True

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.answers.clear()
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def scripted() -> Iterator[Callable[..., Scripted]]:
    made: list[Scripted] = []

    def start(*answers: bytes | tuple[bytes, bool]) -> Scripted:
        server = Scripted([a if isinstance(a, tuple) else (a, False) for a in answers])
        made.append(server)
        return server

    yield start
    safe_http.clear_caches()
    for server in made:
        server.close()


OK_2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_request_is_one_http11_message_with_our_framing_and_the_callers_headers(
    scripted: Callable[..., Scripted],
) -> None:
    server = scripted(OK_2)
    headers = {
        "content-type": "application/json",
        "Host": "evil.example",
        "Content-Length": "999",
        "Transfer-Encoding": "chunked",
        "webhook-id": "msg_1",
    }

    request("POST", server.url("/hook?a=1"), body=b'{"x":1}', headers=headers, policy=LOCAL)

    assert server.requests == [
        b"POST /hook?a=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
        b'webhook-id: msg_1\r\nContent-Length: 7\r\n\r\n{"x":1}' % server.port
    ]


@pytest.mark.parametrize(
    ("name", "value"), [("x-a", "1\r\nInjected: yes"), ("x-b", "nul\x00"), ("bad name", "1")]
)
def test_header_that_would_break_the_request_is_refused_before_connecting(
    no_connections: list[tuple[str, int]], name: str, value: str
) -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        request("POST", "http://127.0.0.1:9/", body=b"", headers={name: value}, policy=LOCAL)
    assert no_connections == []


def test_chunked_body_is_decoded_and_the_connection_kept(scripted: Callable[..., Scripted]) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    server = scripted(chunked, OK_2)

    first = request("GET", server.url(), policy=LOCAL)
    second = request("GET", server.url(), policy=LOCAL)

    assert (first.body, second.body) == (b"hello, world", b"ok")
    assert server.connections == 1


def test_chunked_body_over_max_body_is_cut_and_the_connection_dropped(
    scripted: Callable[..., Scripted],
) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked = head + b"40\r\n" + b"c" * 64 + b"\r\n0\r\n\r\n"
    server = scripted(chunked, OK_2)

    first = request("GET", server.url(), policy=replace(LOCAL, max_body=10))
    second = request("GET", server.url(), policy=LOCAL)

    assert (first.body, second.body) == (b"c" * 10, b"ok")
    assert server.connections == 2


def test_interim_100_continue_is_skipped(scripted: Callable[..., Scripted]) -> None:
    server = scripted(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n!")
    response = request("POST", server.url(), body=b"x", policy=LOCAL)
    assert (response.status, response.body) == (201, b"!")


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\n\r\nok",  # no length: the body runs to the end of the connection
    ],
    ids=["connection-close", "http-1.0", "until-close"],
)
def test_response_that_ends_its_connection_is_read_whole_and_not_reused(
    scripted: Callable[..., Scripted], answer: bytes
) -> None:
    server = scripted((answer, True), (answer, True))

    bodies = [request("GET", server.url(), policy=LOCAL).body for _ in range(2)]

    assert bodies == [b"ok", b"ok"]
    assert server.connections == 2
    assert len(server.requests) == 2  # each sent once: no request went to a connection being closed


def test_repeated_and_folded_header_fields_are_joined(scripted: Callable[..., Scripted]) -> None:
    server = scripted(
        b"HTTP/1.1 429 Too Many\r\nX-Many: a\r\nx-many: b\r\nX-Folded: one\r\n two\r\n"
        b"Retry-After: 5\r\nContent-Length: 0\r\n\r\n"
    )
    response = request("POST", server.url(), body=b"x", policy=LOCAL)
    assert response.headers["X-MANY"] == "a, b"
    assert response.headers["x-folded"] == "one two"
    assert response.headers.get("retry-after") == "5"
    assert "RETRY-AFTER" in response.headers
    assert response.body == b""


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", "conflicting Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "illegal chunk header"),
        (b"HTTP/1.1 200 OK\r\nBad Header: 1\r\n\r\n", "illegal header line"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n", "head is too large"),
        (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", "not valid HTTP/1.1"),
        (b"HTTP/2 200\r\n\r\n", "illegal status line"),
        (b"HTTP/1.1 999 Nine\r\nContent-Length: 0\r\n\r\n", "status 999 is not an HTTP status"),
    ],
)
def test_malformed_response_is_a_protocol_error_naming_the_problem(
    scripted: Callable[..., Scripted], answer: bytes, reason: str
) -> None:
    server = scripted((answer, True))
    with pytest.raises(OutboundError) as failed:
        request("GET", server.url(), policy=LOCAL)
    assert failed.value.kind == "protocol"
    assert reason in str(failed.value)


def test_idle_connection_the_receiver_closed_is_not_used_and_nothing_is_sent_twice(
    scripted: Callable[..., Scripted],
) -> None:
    # The receiver answers and then closes the connection while it sits idle in the pool: however
    # soon the next request comes, the connection is checked first, dropped, and the request goes
    # once, on a new one.
    server = scripted((OK_2, True), OK_2)

    assert request("POST", server.url(), body=b"1", policy=LOCAL).status == 200
    deadline = time.monotonic() + 5
    while server.connections < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # the close reaches this side
    assert request("POST", server.url(), body=b"2", policy=LOCAL).status == 200

    assert [r.rsplit(b"\r\n\r\n", 1)[1] for r in server.requests] == [b"1", b"2"]
    assert server.connections == 2


class BlockedResolver(StubResolver):
    """Answers only once released (at most 10 s): a stranger's DNS server that takes its time."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        super().__init__(table)
        self.release = threading.Event()
        self.answered = threading.Event()

    def __call__(self, host: str, port: int) -> list[str]:
        self.release.wait(10)
        try:
            return super().__call__(host, port)
        finally:
            self.answered.set()


def test_slow_name_resolution_ends_the_request_at_its_deadline(sentinel: Sentinel) -> None:
    resolver = BlockedResolver({"slow-dns.example.test": ["127.0.0.1"]})
    policy = replace(LOCAL, total_timeout=0.3)

    try:
        with pytest.raises(OutboundError) as failed:
            request(
                "POST", f"http://slow-dns.example.test:{sentinel.port}/", policy=policy, resolver=resolver
            )
        still_resolving = not resolver.answered.is_set()
    finally:
        resolver.release.set()

    assert still_resolving  # the request ended while the resolver had not answered yet
    assert failed.value.kind == "timeout"
    assert str(failed.value) == "the host name did not resolve within 0.3 s"
    assert sentinel.accepted() == 0


# --------------------------------------------------------------------------------------------------
# TLS: connected by address, verified for the name


@pytest.fixture
def tls_server(serve: Callable[..., Server], pki: Pki) -> Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    pki.names_seen.clear()

    def record_sni(_sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        pki.names_seen.append(name)

    context.sni_callback = record_sni  # type: ignore[assignment]
    return serve(tls=context)


@pytest.fixture
def trusting(pki: Pki) -> OutboundPolicy:
    """LOCAL, trusting the test CA through the policy's CA option."""
    return replace(LOCAL, ca_file=str(pki.ca_file))


def test_https_connects_to_the_checked_address_with_sni_and_a_certificate_for_the_name(
    tls_server: Server, pki: Pki, connections: list[tuple[str, int]], trusting: OutboundPolicy
) -> None:
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"]})

    response = request(
        "POST",
        f"https://hooks.example.test:{tls_server.port}/hook",
        body=b"x",
        policy=trusting,
        resolver=resolver,
    )

    assert response.status == 200
    assert pki.names_seen == ["hooks.example.test"]
    assert tls_server.seen[0].headers["Host"] == f"hooks.example.test:{tls_server.port}"
    assert connections == [("127.0.0.1", tls_server.port)]


def test_https_certificate_for_another_name_is_a_tls_error(
    tls_server: Server, trusting: OutboundPolicy
) -> None:
    resolver = StubResolver({"other.example.test": ["127.0.0.1"]})

    with pytest.raises(OutboundError) as failed:
        request("POST", f"https://other.example.test:{tls_server.port}/", policy=trusting, resolver=resolver)

    assert failed.value.kind == "tls"
    assert "other.example.test" in str(failed.value)
    assert tls_server.seen == []


def test_https_certificate_from_an_unknown_authority_is_a_tls_error(tls_server: Server) -> None:
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"]})

    with pytest.raises(OutboundError) as failed:
        request("POST", f"https://hooks.example.test:{tls_server.port}/", policy=LOCAL, resolver=resolver)

    assert failed.value.kind == "tls"
    assert tls_server.seen == []


def test_https_connection_is_kept_alive_across_requests(
    tls_server: Server, connections: list[tuple[str, int]], trusting: OutboundPolicy
) -> None:
    resolver = StubResolver({"hooks.example.test": ["127.0.0.1"]})
    url = f"https://hooks.example.test:{tls_server.port}/hook"

    for n in range(5):
        response = request("POST", url, body=b"%d" % n, policy=trusting, resolver=resolver)
        assert response.status == 200

    assert [seen.body for seen in tls_server.seen] == [b"0", b"1", b"2", b"3", b"4"]
    assert len(tls_server.client_ports()) == 1
    assert connections == [("127.0.0.1", tls_server.port)]


# --------------------------------------------------------------------------------------------------
# Differential: the same bytes read by safe_http and by http.client


def _random_response(rng: random.Random) -> bytes:
    status = rng.choice([200, 201, 202, 204, 301, 400, 404, 410, 429, 500, 503])
    body = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 17, 100, 5000, 70_000])))
    fields = [(rng.choice(["X-Req", "x-req", "X-REQ"]), f"v{rng.randrange(1000)}")]
    fields += [(f"X-F{n}", "".join(rng.choice("ab ,;=") for _ in range(rng.randrange(20)))) for n in range(3)]
    if status == 429:
        fields.append(("Retry-After", str(rng.randrange(100))))
    if status == 204:
        body = b""
    framing = rng.choice(["length", "chunked"]) if status != 204 else "none"
    if framing == "length":
        fields.append((rng.choice(["Content-Length", "content-length"]), str(len(body))))
        payload = body
    elif framing == "chunked":
        fields.append(("Transfer-Encoding", "chunked"))
        payload, rest = b"", body
        while rest:
            size = rng.randrange(1, 3000)
            payload += b"%x%s\r\n%s\r\n" % (
                size if size <= len(rest) else len(rest),
                rng.choice([b"", b";x=1"]),
                rest[:size],
            )
            rest = rest[size:]
        payload += b"0\r\n" + rng.choice([b"", b"T: 1\r\n"]) + b"\r\n"
    else:
        payload = b""
    head = b"HTTP/1.1 %d %s\r\n" % (status, rng.choice([b"OK", b"Whatever it says", b""]))
    head += b"".join(
        b"%s:%s%s\r\n" % (n.encode(), rng.choice([b" ", b"", b"  "]), v.encode()) for n, v in fields
    )
    return head + b"\r\n" + payload


def _with_http_client(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    class FakeSocket:
        def makefile(self, mode: str) -> io.BufferedReader:
            return io.BufferedReader(io.BytesIO(raw))

    response = http.client.HTTPResponse(FakeSocket(), method="GET")  # type: ignore[arg-type]
    response.begin()
    headers: dict[str, str] = {}
    for name, raw_value in response.getheaders():
        # RFC 9110 5.5: white space around a field value is not part of it (http.client keeps the
        # trailing part).
        key, value = name.lower(), raw_value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return response.status, headers, response.read()


def test_responses_are_read_exactly_as_http_client_reads_them(scripted: Callable[..., Scripted]) -> None:
    rng = random.Random(20261123)
    answers = [_random_response(rng) for _ in range(60)]
    server = scripted(*answers)
    policy = replace(LOCAL, max_body=1_000_000)

    for raw in answers:
        response = request("GET", server.url(), policy=policy)
        status, headers, body = _with_http_client(raw)
        assert (response.status, response.body) == (status, body)
        assert {name: response.headers[name] for name in headers} == headers
        assert len(response.headers) == len(headers)

    assert server.connections == 1  # every answer was framed right: one kept-alive connection
