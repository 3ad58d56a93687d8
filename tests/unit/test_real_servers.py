"""Deliveries and verification-file checks against real server software on free loopback ports: nginx
(keep-alive, `Connection: close`, chunked answers relayed from an HTTP/1.0 upstream, static files) and
a receiver on Node's `http` module (tests/servers/receiver.js).

`make test` installs nginx-light and nodejs when they are missing. Without them a test skips here,
but under CI=true it fails: a server that cannot start is a broken CI, not a pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.unit.conftest import free_port
from webhooks import safe_http, verification
from webhooks.delivery import post
from webhooks.hooks import Hook
from webhooks.outbound_policy import OutboundPolicy

POLICY = OutboundPolicy(allow_http=True, allow_private=True, connect_timeout=2.0, total_timeout=5.0)
SERVERS = Path(__file__).resolve().parent.parent / "servers"
START_SECONDS = 10.0
DIR_FILE = verification.VerificationFile("smtpeter-00000000000000000000000000000001.txt", "in-the-dir")
ROOT_FILE = verification.VerificationFile("smtpeter-00000000000000000000000000000002.txt", "at-the-root")
MISSING = verification.VerificationFile("smtpeter-00000000000000000000000000000003.txt", "nowhere")


def unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI installs it: make test)")
    pytest.skip(why)


def wait_for_port(port: int, process: subprocess.Popen[Any]) -> bool:
    stop = threading.Event()
    for _ in range(int(START_SECONDS / 0.05)):
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        stop.wait(0.05)
    return False


@dataclass
class Real:
    name: str
    base: str

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


# --------------------------------------------------------------------------------------------------
# nginx, with an HTTP/1.0 upstream that answers without a length and closes


class OldUpstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()  # no length: the body runs to the close, which nginx relays chunked
        self.wfile.write(b"upstream got %d bytes" % len(body))


NGINX_CONF = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 30s;
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location = /hook {{ return 200 "ok"; }}
        location = /close {{ keepalive_timeout 0; return 200 "closing"; }}
        location /upstream/ {{
            proxy_pass http://127.0.0.1:{upstream}/;
            proxy_http_version 1.0;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Real]:
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if binary is None:
        unavailable("nginx is not installed")
    assert binary is not None
    tmp = tmp_path_factory.mktemp("nginx")
    (tmp / "www" / "dir").mkdir(parents=True)
    (tmp / "www" / "dir" / DIR_FILE.file_name).write_text(DIR_FILE.contents + "\n")
    (tmp / "www" / ROOT_FILE.file_name).write_text(ROOT_FILE.contents)
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), OldUpstream)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, upstream=upstream.server_address[1]))
    # -e: the error log from the first line on, so nothing is written outside the temp dir.
    process = subprocess.Popen(
        [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not wait_for_port(port, process):
            process.kill()
            errors = process.communicate(timeout=5)[1].decode(errors="replace")
            log = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
            unavailable(f"nginx did not start: {errors} {log}".strip())
        yield Real("nginx", f"http://127.0.0.1:{port}")
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
        upstream.shutdown()
        upstream.server_close()


# --------------------------------------------------------------------------------------------------
# Node


@pytest.fixture(scope="module")
def node() -> Iterator[Real]:
    binary = shutil.which("node") or shutil.which("nodejs")
    if binary is None:
        unavailable("node is not installed")
    assert binary is not None
    files = {
        f"/dir/{DIR_FILE.file_name}": DIR_FILE.contents + "\n",
        f"/{ROOT_FILE.file_name}": ROOT_FILE.contents,
    }
    process = subprocess.Popen(
        [binary, str(SERVERS / "receiver.js"), json.dumps(files)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    stdout, stdin = process.stdout, process.stdin
    assert stdout is not None
    assert stdin is not None
    try:
        ready: list[bytes] = []
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_SECONDS)
        if not ready or not ready[0].strip().isdigit():
            process.kill()
            unavailable("the Node receiver did not start")
        yield Real("node", f"http://127.0.0.1:{int(ready[0])}")
    finally:
        stdin.close()  # the receiver exits when its standard input ends
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        stdout.close()


@pytest.fixture(params=["nginx", "node"])
def real(request: pytest.FixtureRequest) -> Real:
    server: Real = request.getfixturevalue(request.param)
    return server


# --------------------------------------------------------------------------------------------------
# Deliveries


def test_deliveries_reuse_one_kept_alive_connection(
    real: Real, connections: list[tuple[str, int]], make_hook: Callable[..., Hook]
) -> None:
    hook = make_hook(url=real.url("/hook"))

    sent = [post(hook, f"msg_{n}", {"n": n}, POLICY) for n in range(5)]

    assert [(s.ok, s.status, s.error) for s in sent] == [(True, 200, None)] * 5
    expected = b"ok" if real.name == "nginx" else b"got 3 bytes"
    assert {s.body for s in sent} == {expected}
    assert len(connections) == 1


def test_receiver_that_closes_each_connection_gets_each_delivery_once(
    real: Real, connections: list[tuple[str, int]], make_hook: Callable[..., Hook]
) -> None:
    hook = make_hook(url=real.url("/close"))

    sent = [post(hook, f"msg_{n}", {"n": n}, POLICY) for n in range(3)]

    assert [(s.ok, s.body) for s in sent] == [(True, b"closing")] * 3
    assert len(connections) == 3


@pytest.mark.parametrize("path", ["/chunked", "/upstream/hook"], ids=["node", "nginx-http10-upstream"])
def test_chunked_answer_is_read_whole_and_the_connection_kept(
    request: pytest.FixtureRequest, connections: list[tuple[str, int]], path: str
) -> None:
    real: Real = request.getfixturevalue("node" if path == "/chunked" else "nginx")

    answers = [safe_http.request("POST", real.url(path), body=b"x" * n, policy=POLICY) for n in (7, 1000)]

    prefix = "got" if real.name == "node" else "upstream got"
    assert [(a.status, a.body) for a in answers] == [
        (200, f"{prefix} 7 bytes".encode()),
        (200, f"{prefix} 1000 bytes".encode()),
    ]
    assert {a.headers.get("transfer-encoding") for a in answers} == {"chunked"}
    assert len(connections) == 1


# --------------------------------------------------------------------------------------------------
# Verification files


@pytest.mark.parametrize(
    ("file", "found_at"),
    [(DIR_FILE, "/dir/"), (ROOT_FILE, "/")],
    ids=["in-the-scripts-directory", "at-the-web-root"],
)
def test_verification_file_is_found(
    real: Real, connections: list[tuple[str, int]], file: verification.VerificationFile, found_at: str
) -> None:
    seen = verification.check(real.url("/dir/script.php"), file, POLICY)
    assert [(place.url, place.found) for place in seen if place.found] == [
        (real.url(found_at + file.file_name), True)
    ]


def test_missing_verification_file_is_a_miss_naming_both_places(
    real: Real, connections: list[tuple[str, int]]
) -> None:
    seen = verification.check(real.url("/dir/script.php"), MISSING, POLICY)
    assert not any(place.found for place in seen)
    assert verification.summary(seen) == (
        f"{real.url('/dir/' + MISSING.file_name)}: HTTP 404; {real.url('/' + MISSING.file_name)}: HTTP 404"
    )
