"""webhooks.verification: where the customer may publish the file, what it looks like, how it is checked."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from webhooks.hooks import LocationCheck
from webhooks.safe_http import OutboundPolicy
from webhooks.verification import VerificationFile, check, locations, new_file, summary

NAME = "smtpeter-0123456789abcdef0123456789abcdef.txt"
LOOPBACK = OutboundPolicy(allow_http=True, allow_private=True, connect_timeout=2.0, total_timeout=5.0)
FILE = VerificationFile(file_name=NAME, contents="the-contents")


# --------------------------------------------------------------------------------------------------
# locations


def test_locations_are_the_script_directory_then_the_web_root() -> None:
    assert locations("https://domain.com/dir/script.php", NAME) == [
        f"https://domain.com/dir/{NAME}",
        f"https://domain.com/{NAME}",
    ]


def test_locations_of_a_script_at_the_root_are_one_url() -> None:
    assert locations("https://domain.com/script.php", NAME) == [f"https://domain.com/{NAME}"]


def test_locations_of_a_bare_host_are_one_url_at_the_root() -> None:
    assert locations("https://domain.com", NAME) == [f"https://domain.com/{NAME}"]


def test_locations_drop_the_query_string_and_fragment() -> None:
    assert locations("https://domain.com/dir/script.php?key=1&x=2#top", NAME) == [
        f"https://domain.com/dir/{NAME}",
        f"https://domain.com/{NAME}",
    ]


def test_locations_keep_the_port() -> None:
    assert locations("https://domain.com:8443/dir/script.php", NAME) == [
        f"https://domain.com:8443/dir/{NAME}",
        f"https://domain.com:8443/{NAME}",
    ]


def test_locations_of_a_url_ending_in_a_slash_use_that_directory() -> None:
    assert locations("https://domain.com/a/b/", NAME) == [
        f"https://domain.com/a/b/{NAME}",
        f"https://domain.com/{NAME}",
    ]


def test_locations_of_a_deep_script_use_only_its_own_directory_and_the_root() -> None:
    assert locations("http://domain.com/a/b/c/hook", NAME) == [
        f"http://domain.com/a/b/c/{NAME}",
        f"http://domain.com/{NAME}",
    ]


# --------------------------------------------------------------------------------------------------
# new_file


def test_new_file_name_is_prefix_dash_32_hex_dot_txt() -> None:
    assert re.fullmatch(r"smtpeter-[0-9a-f]{32}\.txt", new_file("smtpeter").file_name)


def test_new_file_name_uses_the_configured_prefix() -> None:
    assert re.fullmatch(r"acme-hooks-[0-9a-f]{32}\.txt", new_file("acme-hooks").file_name)


def test_new_file_contents_carry_at_least_128_bits_url_safe() -> None:
    # 22 characters of the 64-letter URL-safe alphabet carry 132 bits.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", new_file("smtpeter").contents)


def test_new_file_contents_are_not_the_name_token() -> None:
    file = new_file("smtpeter")
    token = file.file_name.removeprefix("smtpeter-").removesuffix(".txt")
    assert token not in file.contents


def test_two_new_files_differ_in_name_and_contents() -> None:
    first, second = new_file("smtpeter"), new_file("smtpeter")
    assert first.file_name != second.file_name
    assert first.contents != second.contents


# --------------------------------------------------------------------------------------------------
# check, against real servers on 127.0.0.1


class _Server:
    """An HTTP/1.1 server on 127.0.0.1 whose GETs answer from a table: path -> (status, headers, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.gets: list[str] = []
        routes, gets = self.routes, self.gets

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                gets.append(self.path)
                status, headers, body = routes.get(self.path, (404, {}, b"not here"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def serve(self, path: str, body: bytes, status: int = 200, **headers: str) -> None:
        self.routes[path] = (status, headers, body)


@pytest.fixture(scope="module")
def running_server() -> Iterator[_Server]:
    server = _Server()
    threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def server(running_server: _Server) -> _Server:
    running_server.routes.clear()
    running_server.gets.clear()
    return running_server


def found_at(seen: list[LocationCheck]) -> str | None:
    return next((place.url for place in seen if place.found), None)


def test_check_finds_the_file_in_the_script_directory(server: _Server) -> None:
    server.serve(f"/dir/{NAME}", b"the-contents")
    seen = check(f"{server.url}/dir/script.php", FILE, LOOPBACK)
    assert seen == [LocationCheck(url=f"{server.url}/dir/{NAME}", found=True, status=200)]


def test_check_finds_the_file_at_the_web_root(server: _Server) -> None:
    server.serve(f"/{NAME}", b"the-contents")
    seen = check(f"{server.url}/dir/script.php", FILE, LOOPBACK)
    assert found_at(seen) == f"{server.url}/{NAME}"
    assert seen[0].problem == "HTTP 404"


def test_check_ignores_white_space_around_the_contents(server: _Server) -> None:
    server.serve(f"/{NAME}", b"\n  the-contents \r\n")
    assert found_at(check(f"{server.url}/script.php", FILE, LOOPBACK))


def test_check_with_other_contents_is_missing_and_says_so(server: _Server) -> None:
    server.serve(f"/{NAME}", b"the-contents-and-more")
    assert check(f"{server.url}/script.php", FILE, LOOPBACK) == [
        LocationCheck(url=f"{server.url}/{NAME}", found=False, status=200, problem="contents differ")
    ]


def test_check_without_the_file_is_missing_with_a_reason_per_location(server: _Server) -> None:
    seen = check(f"{server.url}/dir/script.php", FILE, LOOPBACK)
    assert [(place.status, place.problem) for place in seen] == [(404, "HTTP 404"), (404, "HTTP 404")]
    assert summary(seen) == f"{server.url}/dir/{NAME}: HTTP 404; {server.url}/{NAME}: HTTP 404"


def test_check_of_a_closed_port_says_connection_refused(server: _Server) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections to it are refused
        seen = check(f"http://127.0.0.1:{port}/script.php", FILE, LOOPBACK)
    assert [(place.status, place.problem) for place in seen] == [(None, "connection refused")]


def test_check_of_a_private_address_without_permission_is_missing_and_fetches_nothing(
    server: _Server,
) -> None:
    server.serve(f"/{NAME}", b"the-contents")
    [place] = check(f"{server.url}/script.php", FILE, OutboundPolicy())
    assert not place.found
    assert place.problem
    assert server.gets == []


def test_check_follows_a_redirect_on_the_same_host(server: _Server) -> None:
    server.serve(f"/{NAME}", b"", 302, Location=f"/moved/{NAME}")
    server.serve(f"/moved/{NAME}", b"the-contents")
    assert found_at(check(f"{server.url}/script.php", FILE, LOOPBACK))


def test_check_does_not_follow_a_redirect_to_another_host(server: _Server) -> None:
    # localhost is the same machine but another host name: the redirect must not be followed.
    server.serve(f"/{NAME}", b"", 302, Location=f"http://localhost:{server.port}/x/{NAME}")
    server.serve(f"/x/{NAME}", b"the-contents")
    assert check(f"{server.url}/script.php", FILE, LOOPBACK) == [
        LocationCheck(
            url=f"{server.url}/{NAME}",
            found=False,
            status=302,
            problem=f"redirected to another host (http://localhost:{server.port}), not followed",
        )
    ]
    assert server.gets == [f"/{NAME}"]


def test_check_stops_following_redirects_after_three(server: _Server) -> None:
    for hop in range(5):
        server.serve(f"/{hop}/{NAME}", b"", 302, Location=f"/{hop + 1}/{NAME}")
    server.serve(f"/{NAME}", b"", 302, Location=f"/0/{NAME}")
    server.serve(f"/5/{NAME}", b"the-contents")
    assert check(f"{server.url}/script.php", FILE, LOOPBACK) == [
        LocationCheck(
            url=f"{server.url}/{NAME}", found=False, status=302, problem="more than 3 redirects, not followed"
        )
    ]
    assert len(server.gets) == 4


def test_check_finds_a_file_served_with_connection_close(server: _Server) -> None:
    server.serve(f"/{NAME}", b"the-contents", Connection="close")
    assert found_at(check(f"{server.url}/script.php", FILE, LOOPBACK)) == f"{server.url}/{NAME}"
