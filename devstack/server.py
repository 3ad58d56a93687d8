"""The local stack: template.yaml on moto's server, its handlers in this process, its API on loopback.

Startup order matters: the environment (moto's endpoint, fake credentials, the functions' variables)
is in place before any handler module is imported, because handlers build their clients and
settings once, at import, as on Lambda. Everything runs in threads of this one process, so stopping
it leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from devstack import lambda_router, moto_sqs, smtp
from devstack.apigw import Gateway
from devstack.poller import Poller
from devstack.template import REGION, Stack

logger = logging.getLogger("devstack")

DEFAULT_PORT = 3000
DEFAULT_MOTO_PORT = 5000
DEFAULT_TOKENS = "dev:dev-token"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# How long a stop waits for an invocation in flight (one long poll, one batching window, one batch).
POLLER_STOP_SECONDS = 20.0


class ConfigError(ValueError):
    """A knob has a value the stack cannot start with."""


@dataclass(frozen=True)
class Config:
    """The environment knobs of `make dev`."""

    port: int = DEFAULT_PORT
    moto_port: int = DEFAULT_MOTO_PORT
    tokens: tuple[tuple[str, str], ...] = (("dev", "dev-token"),)
    allow_private: bool = True
    retry_schedule: str | None = None
    validation_schedule: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        return cls(
            port=_port(environ, "WEBHOOKS_PORT", DEFAULT_PORT),
            moto_port=_port(environ, "WEBHOOKS_MOTO_PORT", DEFAULT_MOTO_PORT),
            tokens=_tokens(environ.get("WEBHOOKS_DEV_TOKENS") or DEFAULT_TOKENS),
            allow_private=_flag(environ, "WEBHOOKS_ALLOW_PRIVATE", default=True),
            retry_schedule=_schedule(environ, "WEBHOOKS_RETRY_SCHEDULE"),
            validation_schedule=_schedule(environ, "WEBHOOKS_VALIDATION_SCHEDULE"),
        )

    def overrides(self, stack_defaults: Mapping[str, str]) -> dict[str, str]:
        """Template parameter overrides; everything not set here keeps the template's default."""
        allow = "true" if self.allow_private else "false"
        overrides = {"AllowHttpTargets": allow, "AllowPrivateTargets": allow}
        if self.retry_schedule is not None:
            overrides["RetrySchedule"] = self.retry_schedule
        if self.validation_schedule is not None:
            overrides["ValidationSchedule"] = self.validation_schedule
        # The delivery function parks exhausted deliveries itself and refuses to start unless the
        # queue's redrive backstop allows more receives than there are attempts.
        attempts = len((self.retry_schedule or stack_defaults["RetrySchedule"]).split(","))
        if int(stack_defaults["DeliveryMaxReceiveCount"]) <= attempts:
            overrides["DeliveryMaxReceiveCount"] = str(attempts + 1)
        return overrides


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) > 65535:
        raise ConfigError(f"{name}={raw!r}: must be a port number (0 picks a free one)")
    return int(raw)


def _flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r}: must be 1 or 0")


def _schedule(environ: Mapping[str, str], name: str) -> str | None:
    raw = environ.get(name, "").replace(" ", "")
    if not raw:
        return None
    if not all(part.isdigit() for part in raw.split(",")):
        raise ConfigError(f"{name}={raw!r}: must be comma-separated seconds, e.g. 0,5,30")
    return raw


def _tokens(raw: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in raw.split(","):
        account, sep, token = item.strip().partition(":")
        if not sep or not account or not token:
            raise ConfigError(f"WEBHOOKS_DEV_TOKENS: {item!r} is not account:token")
        # The authorizer only accepts tokens of 8 to 512 non-blank characters.
        if not 8 <= len(token) <= 512 or any(c.isspace() for c in token):
            raise ConfigError(
                f"WEBHOOKS_DEV_TOKENS: the token of {account!r} must be 8 to 512 non-blank chars"
            )
        pairs.append((account, token))
    return tuple(pairs)


# -- moto ------------------------------------------------------------------------------------------


class MotoServer:
    """moto's server app in a thread of this process (what ThreadedMotoServer does), except that
    binding happens here, so a busy port fails at once instead of hanging the start."""

    def __init__(self, port: int) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        # A flood of queued deliveries would otherwise make every SQS call scan the whole queue.
        moto_sqs.install()
        app = DomainDispatcherApplication(create_backend_app)
        # Bound here rather than by werkzeug, which answers a busy port with sys.exit(1).
        try:
            listening = socket.create_server(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(f"WEBHOOKS_MOTO_PORT {port}: {exc.strerror}") from exc
        with listening:
            self.server: BaseWSGIServer = make_server(
                "127.0.0.1",
                port,
                app,
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=listening.fileno(),
            )
        self.thread = threading.Thread(target=self.server.serve_forever, name="moto", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self.thread.start()
        answer = requests.post(f"{self.url}/moto-api/config", json=MOTO_CONFIG, timeout=10)
        answer.raise_for_status()
        return self

    def stop(self) -> None:
        # shutdown() waits for serve_forever to notice; one never started would make it wait forever.
        if self.thread.ident is not None:
            self.server.shutdown()
            self.thread.join(5)
        self.server.server_close()


# -- the API ---------------------------------------------------------------------------------------


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # Set once the stack exists; the port is bound before, so a busy one fails the start at once.
    gateway: Gateway

    def __init__(self, port: int) -> None:
        try:
            super().__init__(("127.0.0.1", port), ApiHandler)
        except OSError as exc:
            raise OSError(f"WEBHOOKS_PORT {port}: {exc.strerror}") from exc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ApiHandler(BaseHTTPRequestHandler):
    """API Gateway's part: HTTP in, the proxy event to the route's function, its answer out."""

    server: ApiServer
    protocol_version = "HTTP/1.1"
    server_version = "webhooks-devstack"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        # One line per request is written by _handle (with the time taken); this would add another.
        pass

    def _handle(self) -> None:
        started = time.perf_counter()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(411, {"Content-Type": "application/json"}, b'{"error":{"code":"length_required"}}')
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        answer = self.server.gateway.handle(self.command, path, dict(self.headers.items()), query, body)
        self._send(answer.status, answer.headers, answer.body)
        elapsed = (time.perf_counter() - started) * 1000
        logger.info("%s %s %d %.0fms", self.command, self.path, answer.status, elapsed)

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        # http.server answers a method it has no do_<METHOD> for (TRACE, QUERY, CONNECT, …) with a 501 HTML
        # page; API Gateway answers every method with JSON: the route's, or a 4xx when it has none.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


# -- the stack -------------------------------------------------------------------------------------


def _aws_environment(moto_url: str, moto_port: int) -> dict[str, str]:
    return {
        # Every boto3 client of this process (the handlers' included) talks to moto, never to AWS.
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        # moto's state-machine interpreter calls the services back on http://localhost:$MOTO_PORT.
        "MOTO_PORT": str(moto_port),
    }


class LocalStack:
    """Everything `make dev` runs; start() returns once the API answers, stop() undoes it all."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stopping = threading.Event()
        self.moto: MotoServer | None = None
        self.api: ApiServer | None = None
        self.api_thread: threading.Thread | None = None
        self.pollers: list[Poller] = []
        self.stack: Stack | None = None
        self.smtp: smtp.SmtpListener | None = None

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.api = ApiServer(self.config.port)
        self.moto = MotoServer(self.config.moto_port)
        os.environ.update(_aws_environment(self.moto.url, self.moto.port))
        self.moto.start()

        defaults = Stack.from_template().parameters
        stack = Stack.from_template(overrides={**self.config.overrides(defaults), **smtp.stack_overrides()})
        self.stack = stack
        stack.create(boto3.Session(region_name=REGION), endpoint_url=self.moto.url)
        bucket = smtp.create_intake(stack, secret_value=smtp.secret(), endpoint_url=self.moto.url)
        environment = stack.environment()
        # A log level chosen by whoever runs the stack beats the template's.
        if os.environ.get("POWERTOOLS_LOG_LEVEL"):
            environment.pop("POWERTOOLS_LOG_LEVEL", None)
        os.environ.update(environment)

        # Imported only now: both read the environment once and cache what they built from it.
        from webhooks import aws, settings
        from webhooks.auth import TokenStore

        aws.reset()
        settings.get_settings.cache_clear()

        functions = stack.functions()
        handlers = {logical_id: function.load() for logical_id, function in functions.items()}
        lambda_router.install()
        for logical_id, function in functions.items():
            lambda_router.register(function.name, handlers[logical_id])

        # The table the authorizer reads, found the way it finds it.
        tokens = TokenStore(settings.get_settings().tokens_table)
        for account, token in self.config.tokens:
            tokens.create(account, "dev", token=token)

        for source in stack.sqs_sources():
            function = functions[source.function]
            # A session per poller: boto3's default session is not safe to share across threads.
            sqs = boto3.Session().client("sqs", region_name=REGION, endpoint_url=self.moto.url)
            self.pollers.append(
                Poller(
                    sqs,
                    stack.physical[source.queue]["Ref"],
                    handlers[source.function],
                    function_name=function.name,
                    source=source,
                    stop=self.stopping,
                ).start()
            )

        self.smtp = smtp.SmtpListener(
            bucket, port=smtp.port(), domain=smtp.domain(), endpoint_url=self.moto.url
        )
        self.smtp.start()
        self.api.gateway = Gateway(stack)
        self.api_thread = threading.Thread(target=self.api.serve_forever, name="api", daemon=True)
        self.api_thread.start()

    def stop(self) -> None:
        self.stopping.set()
        deadline = time.monotonic() + POLLER_STOP_SECONDS
        for poller in self.pollers:
            if not poller.join(max(0.0, deadline - time.monotonic())):
                logger.warning("the %s poller is still busy; leaving it", poller.source.queue)
        if self.api is not None:
            if self.api_thread is not None:
                self.api.shutdown()
            self.api.server_close()
        if self.smtp is not None:
            self.smtp.stop()
        if self.moto is not None:
            self.moto.stop()

    def banner(self) -> str:
        assert self.api is not None
        assert self.moto is not None
        assert self.stack is not None
        url = self.api.url
        _, token = self.config.tokens[0]
        receiver = "http://127.0.0.1:4000/hook" if self.config.allow_private else "https://example.com/hook"
        body = json.dumps({"url": receiver, "events": ["click", "open", "bounce"]})
        curl = (
            f"curl -s -X POST {url}/hooks -H 'Authorization: Bearer {token}' "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
        )
        parameters = self.stack.parameters
        lines = [
            "",
            f"webhooks local stack (template.yaml on moto at {self.moto.url})",
            f"  API:        {url}   (OpenAPI: {url}/openapi.json)",
            f"  dashboard:  {url}/   (sign in with a token below)",
            *(f"  token:      {t}   (account {a}; Authorization: Bearer {t})" for a, t in self.config.tokens),
            f"  SMTP:       127.0.0.1:{smtp.port()}   (returned mail for @{smtp.domain()}; make return-path)",
            f"  retries:    {parameters['RetrySchedule']} s",
            f"  validation: {parameters['ValidationSchedule']} s",
            "  targets:    "
            + ("http and loopback allowed" if self.config.allow_private else "https and public only"),
            "",
            "Register a hook (for the demo receiver of `make receiver`):",
            f"  {curl}",
            "Then save its verification file (the answer's verification.file_name, holding .contents) in",
            "  .devstack/www/, run `make receiver WEBHOOK_SECRET=<the answer's secret>`, and check at once:",
            f"  curl -s -X POST {url}/hooks/<id>/validate -H 'Authorization: Bearer {token}'",
            f"Send events:  curl -s -X POST {url}/events -H 'Authorization: Bearer {token}' "
            "-H 'Content-Type: application/json' -d @events/platform_events.json",
            f"API docs:     {url}/docs",
            "Dead-letter queues: make dlq"
            + ("" if self.moto.port == 5000 else f" WEBHOOKS_MOTO_PORT={self.moto.port}"),
            "Ctrl-C stops everything.",
            "",
            f"ready: {url}",
        ]
        return "\n".join(lines)


def main(environ: Mapping[str, str] | None = None) -> int:
    # Our own lines at INFO; the libraries' (botocore's credential chatter, moto's line per call)
    # only when something goes wrong. The handlers log through Powertools, at the template's level.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("devstack").setLevel(logging.INFO)
    # werkzeug raises its own level to INFO unless one was set.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        config = Config.from_env(os.environ if environ is None else environ)
    except ConfigError as exc:
        logger.error("%s", exc)
        return 2

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    stack = LocalStack(config)
    try:
        stack.start()
    except (OSError, ValueError, KeyError) as exc:
        logger.error("the local stack did not start: %s", exc)
        return 1
    print(stack.banner(), flush=True)
    # Short waits: the main thread only runs the signal handler between them.
    while not stop.wait(0.5):
        pass
    logger.info("stopping")
    stack.stop()
    logger.info("stopped")
    return 0
