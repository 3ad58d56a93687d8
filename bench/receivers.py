"""Webhook receivers for the benchmark, in a process of their own so they never share a GIL with
the sender being measured.

Each is a ThreadingHTTPServer on 127.0.0.1 speaking HTTP/1.1 keep-alive with Nagle disabled, and
answers a POST with status line, headers and body in one write (two writes, or Nagle, would make
delayed ACKs stall every kept-alive request by ~40 ms). `GET /count` answers how many POSTs the
process has served, so a run can check that every delivery arrived.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A receiver process lives at most this long, whatever happens to the benchmark that started it.
MAX_LIFETIME_SECONDS = 600.0
START_TIMEOUT_SECONDS = 30.0

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops SYNs when 32 senders connect at once (1 s retransmits).
    request_queue_size = 256


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, Nagle off, no request log: what every benchmark receiver speaks."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass


def _serve(conn: Any, ports: int, delay: float) -> None:
    lock = threading.Lock()
    served = [0]

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if delay:
                time.sleep(delay)
            with lock:
                served[0] += 1
            self.wfile.write(_OK)

        def do_GET(self) -> None:
            with lock:
                body = str(served[0]).encode()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    servers = [Server(("127.0.0.1", 0), Handler) for _ in range(ports)]
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
    conn.send([server.server_address[1] for server in servers])
    # Until told to stop (or the parent is gone), and never longer than MAX_LIFETIME_SECONDS.
    with contextlib.suppress(EOFError, OSError):
        conn.poll(MAX_LIFETIME_SECONDS)
    for server in servers:
        server.shutdown()
        server.server_close()


class ReceiverProcess:
    """`ports` receivers in one child process, each answering 200 after `delay` seconds."""

    def __init__(self, ports: int = 1, delay: float = 0.0) -> None:
        self.count = ports
        self.delay = delay
        self.ports: list[int] = []
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, ports, delay), name="bench-receivers", daemon=True
        )

    def __enter__(self) -> ReceiverProcess:
        self._process.start()
        if not self._conn.poll(START_TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError("the receiver process did not start")
        self.ports = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, index: int = 0, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.ports[index]}{path}"

    def served(self) -> int:
        """POSTs answered so far by this process (all ports)."""
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", self.ports[0], timeout=5)
        try:
            connection.request("GET", "/count")
            return int(connection.getresponse().read())
        finally:
            connection.close()

    def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
