"""moto's server in a process of its own, on a free 127.0.0.1 port.

AWS is remote: a call from Lambda to DynamoDB or SQS is a network wait, during which the caller's
GIL is free. moto in the benchmark's own process answers each call with this process's CPU, under
its GIL, which stalls the handler's HTTP threads as no AWS call does. Out of process, moto's work
is a wait on a loopback socket, as a real call is (it still takes CPU of this machine, not of ours).

This module imports nothing heavy at the top: a spawned child imports it to run `_serve`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from typing import Any

# A moto process lives at most this long, whatever happens to the benchmark that started it.
MAX_LIFETIME_SECONDS = 600.0
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


def _serve(conn: Any, lifetime: float) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # it logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        conn.send(server.get_host_and_port()[1])
        # Until told to stop (or the parent is gone), and never longer than `lifetime`.
        with contextlib.suppress(EOFError, OSError):
            conn.poll(lifetime)
    finally:
        server.stop()


class MotoProcess:
    """`with MotoProcess(config) as moto:` moto's server in a spawned child, `moto.url` its endpoint;
    `config` is POSTed to its `/moto-api/config` first. The child is stopped on leaving, errors
    included (and, as a daemon, when this process exits)."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config
        self.port = 0
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, MAX_LIFETIME_SECONDS), name="bench-moto", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the moto process has used so far (all its threads), from
        /proc; 0.0 where that cannot be read."""
        try:
            with open(f"/proc/{self._process.pid}/stat") as stat:
                # Fields after the command name (which may hold spaces), from its closing paren.
                fields = stat.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return 0.0

    def __enter__(self) -> MotoProcess:
        self._process.start()
        try:
            if not self._conn.poll(START_TIMEOUT_SECONDS):
                raise RuntimeError("the moto process did not start")
            self.port = int(self._conn.recv())
            if self.config is not None:
                import requests

                answer = requests.post(f"{self.url}/moto-api/config", json=self.config, timeout=10)
                answer.raise_for_status()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._process.pid is None:
            return  # never started
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._process.join(STOP_TIMEOUT_SECONDS)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
        self._conn.close()
