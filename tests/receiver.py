"""A real HTTP receiver on 127.0.0.1 for tests: serves verification files, records POSTs, and
answers with whatever status the test sets."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    files: dict[str, str] = field(default_factory=dict)  # path -> contents served on GET
    status: int = 200
    # (status, body) for the next POSTs, one each, in order; then `status` applies again.
    replies: list[tuple[int, bytes]] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # GETs from number `hold_gets_from` on (0 is the first) wait until `gets_released` is set (10 s at
    # most): a test can look at what happened between two checks while the next one is under way.
    hold_gets_from: int | None = None
    gets_released: threading.Event = field(default_factory=threading.Event)
    # Workers: with a capacity, a POST that finds them all busy is answered 503 at once (PHP-FPM's
    # pool, full), and `busy` counts those answers. `peak` is the most POSTs ever in the house.
    capacity: int | None = None
    busy: int = 0
    in_house: int = 0
    peak: int = 0
    posts: list[Received] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    # 0 picks a free port at the first start(); later starts reuse it, so a receiver can go down
    # and come back at the same URL.
    port: int = 0
    # Open keep-alive connections: stop() cuts them, or pooled clients would still be answered.
    connections: set[socket.socket] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self.port, "start() the receiver first"
        return f"http://127.0.0.1:{self.port}"

    def wait_for_posts(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.02)
        return list(self.posts)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections.add(self.connection)

            def finish(self) -> None:
                with receiver.lock:
                    receiver.connections.discard(self.connection)
                super().finish()

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                for key, value in receiver.extra_headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with receiver.lock:
                    number = len(receiver.gets)
                    receiver.gets.append(self.path)
                if receiver.hold_gets_from is not None and number >= receiver.hold_gets_from:
                    receiver.gets_released.wait(10)
                contents = receiver.files.get(self.path)
                if contents is None:
                    self._answer(404, b"not here")
                else:
                    self._answer(200, contents.encode())

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.in_house += 1
                    receiver.peak = max(receiver.peak, receiver.in_house)
                    full = receiver.capacity is not None and receiver.in_house > receiver.capacity
                    if full:
                        receiver.busy += 1
                        receiver.in_house -= 1
                if full:
                    self._answer(503, b"busy")
                    return
                try:
                    self._work(body)
                finally:
                    with receiver.lock:
                        receiver.in_house -= 1
                self._answer(*self._reply)

            def _work(self, body: bytes) -> None:
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.posts.append(
                        Received(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                        )
                    )
                    reply = receiver.replies.pop(0) if receiver.replies else None
                self._reply = reply or (receiver.status, b"ok" if receiver.status < 300 else b"nope")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            open_connections, self.connections = list(self.connections), set()
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
