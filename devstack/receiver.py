"""A demo webhook receiver (`make receiver`): what a customer's endpoint does, on 127.0.0.1.

GET serves files from a folder, which is where the hook's verification file goes. POST checks the
Standard Webhooks signature with the hook's secret(s), prints the event and answers 200, or 401
when the signature does not verify.

    make receiver [PORT=4000] [SECRET_FILE=.devstack/hook.json]
    python -m devstack.receiver [--port 4000] [--dir .devstack/www] [--secret-file .devstack/hook.json]

The secret comes from a file (`--secret-file`, or $WEBHOOK_SECRET_FILE): the JSON `POST /hooks` answered
(its `secret`), or whsec_ secrets one per line; or from $WEBHOOK_SECRET (comma-separated). Never put it on
the command line: anyone on the machine can read a process's arguments (`ps`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from standardwebhooks import Webhook, WebhookVerificationError

DEFAULT_PORT = 4000
DEFAULT_DIR = Path(".devstack/www")


_FORM_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_FORM_PART = re.compile(r"\[([^\[\]]*)\]")


def decode(body: bytes, content_type: str) -> Any:
    """The event as a dict: JSON as is; a form the way PHP reads it (`tags[]=a` a list,
    `fields[name]=v` a dict), the convention the platform's receivers expect."""
    if content_type.split(";")[0].strip().lower() == "application/json":
        return json.loads(body)
    event: dict[str, Any] = {}
    for key, values in parse_qs(body.decode(), keep_blank_values=True).items():
        match = _FORM_KEY.match(key)
        path = [match.group(1), *_FORM_PART.findall(match.group(2))] if match else [key]
        for value in values:
            _place(event, path, value)
    return event


def _place(into: dict[str, Any], path: list[str], value: str) -> None:
    """Sets event[a][b]... = value; an empty part (`a[]`) appends to a list."""
    head, rest = path[0], path[1:]
    if not rest:
        into[head] = value
    elif rest == [""]:
        into.setdefault(head, []).append(value)
    else:
        _place(into.setdefault(head, {}), rest, value)


def verify(secrets: Sequence[str], body: bytes, headers: dict[str, str]) -> bool:
    """True when one of the secrets verifies the signature (two during a rotation's grace period)."""
    for secret in secrets:
        try:
            # Form bodies are not JSON: the library must not parse what it verifies.
            Webhook(secret).verify(body, headers, json_parse=False)
        except WebhookVerificationError:
            continue
        return True
    return False


def secrets_in(path: Path) -> list[str]:
    """The secrets in a file: a hook as `POST /hooks` answered it, or whsec_ secrets one per line."""
    text = path.read_text()
    try:
        hook = json.loads(text)
    except ValueError:
        return [line.strip() for line in text.splitlines() if line.strip()]
    if not isinstance(hook, dict) or not hook.get("secret"):
        raise ValueError("a JSON file must be a hook with its secret, as POST /hooks answered it")
    return [str(hook["secret"])]


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, folder: Path, secrets: Sequence[str]) -> None:
        self.folder = folder.resolve()
        self.secrets = list(secrets)
        super().__init__(("127.0.0.1", port), ReceiverHandler)


class ReceiverHandler(BaseHTTPRequestHandler):
    server: ReceiverServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _file(self) -> Path | None:
        """The file for this path under the folder; a verification file is also found by its name
        alone, so it works whatever directory the hook's URL has."""
        relative = unquote(urlsplit(self.path).path).lstrip("/")
        for candidate in (self.server.folder / relative, self.server.folder / Path(relative).name):
            resolved = candidate.resolve()
            if resolved.is_relative_to(self.server.folder) and resolved.is_file():
                return resolved
        return None

    def do_GET(self) -> None:
        found = self._file()
        if found is None:
            self._answer(404, b"not found\n")
        else:
            self._answer(200, found.read_bytes())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {key.lower(): value for key, value in self.headers.items()}
        content_type = headers.get("content-type", "")
        if self.server.secrets and not verify(self.server.secrets, body, headers):
            print(f"!! {self.path}: bad signature (webhook-id {headers.get('webhook-id')})", flush=True)
            self._answer(401, b"bad signature\n")
            return
        try:
            event = decode(body, content_type)
        except (ValueError, AttributeError, TypeError):
            # Not JSON, or a form mixing `a=1` with `a[b]=2`: shown as it came.
            event = body.decode(errors="replace")
        checked = "signature ok" if self.server.secrets else "signature NOT checked (no secret given)"
        print(
            f"<< {self.path} webhook-id {headers.get('webhook-id')} ({checked})\n"
            + json.dumps(event, indent=2, ensure_ascii=False),
            flush=True,
        )
        self._answer(200, b"ok\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.receiver", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder served on GET")
    parser.add_argument(
        "--secret-file",
        type=Path,
        default=os.environ.get("WEBHOOK_SECRET_FILE") or None,
        help="the hook JSON POST /hooks answered, or whsec_ secrets one per line (default: "
        "$WEBHOOK_SECRET_FILE; else $WEBHOOK_SECRET, comma-separated)",
    )
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        help="a whsec_ secret (repeatable); visible to anyone running ps: prefer --secret-file",
    )
    args = parser.parse_args(argv)
    try:
        secrets = args.secret or (
            secrets_in(args.secret_file)
            if args.secret_file
            else [s for s in os.environ.get("WEBHOOK_SECRET", "").split(",") if s]
        )
    except (OSError, ValueError) as exc:
        parser.error(f"--secret-file {args.secret_file}: {exc}")
    for secret in secrets:
        try:
            Webhook(secret)
        except Exception:
            parser.error(f"{secret!r} is not a webhook secret (whsec_...)")
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        server = ReceiverServer(args.port, args.dir, secrets)
    except OSError as exc:
        parser.error(f"cannot listen on 127.0.0.1:{args.port}: {exc}")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"receiver on {url}/hook; serving {server.folder} on GET", flush=True)
    if not secrets:
        print(
            "no --secret-file, WEBHOOK_SECRET_FILE or WEBHOOK_SECRET: signatures are not checked", flush=True
        )

    # Handlers of our own: a shell that starts us in the background leaves SIGINT ignored.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    threading.Thread(target=server.serve_forever, name="receiver", daemon=True).start()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
