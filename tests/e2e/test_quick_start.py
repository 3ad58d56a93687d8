"""The README's quick start, run as written: its shell blocks, in order, against `make dev`.

Only the ports change (free ones for 3000, 4000 and 5000, so that a developer's own stack is left alone), and
the commands run in a scratch folder that links to the repository, so a developer's .devstack/ is left alone
too. Terminal 2's receiver runs in the background; stopping it and starting it again are what the README
says to do by hand.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_local_stack import START_SECONDS, STOP_SECONDS, eventually, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parent.parent.parent
README = (ROOT / "README.md").read_text()
# What `make` and the commands need from the repository.
LINKED = ["Makefile", ".venv", "devstack", "layers", "events", "requirements-dev.txt", "template.yaml"]


def block(name: str) -> str:
    """The ```sh block after `<!-- quick-start: name -->` in the README."""
    found = re.search(rf"<!-- quick-start: {name} -->\n```sh\n(.*?)```", README, re.DOTALL)
    assert found, f"README has no quick-start block {name!r}"
    return found.group(1)


class Ports:
    def __init__(self) -> None:
        self.api, self.receiver, self.moto = free_port(), free_port(), free_port()

    def apply(self, commands: str) -> str:
        return (
            commands.replace("127.0.0.1:3000", f"127.0.0.1:{self.api}")
            .replace("127.0.0.1:4000", f"127.0.0.1:{self.receiver}")
            .replace("PORT=4000", f"PORT={self.receiver}")
        )


class Shell:
    """Commands run with bash in the scratch folder, as a person would type them, with the stack's ports."""

    def __init__(self, folder: Path, ports: Ports) -> None:
        self.folder = folder
        self.ports = ports
        self.env = {
            **os.environ,
            "WEBHOOKS_PORT": str(ports.api),
            "WEBHOOKS_MOTO_PORT": str(ports.moto),
            "WEBHOOKS_SMTP_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
        }
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []

    def run(self, commands: str, prelude: str = "") -> str:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", prelude + self.ports.apply(commands)],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, f"{commands}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        return done.stdout

    def start(self, command: str, log: Path, ready: str) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", self.ports.apply(command)],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((process, log))

        def started() -> bool | None:
            if process.poll() is not None:
                raise AssertionError(f"{command} exited with {process.returncode}:\n{log.read_text()}")
            return True if ready in log.read_text(errors="replace") else None

        eventually(f"{command} prints {ready!r}", started, START_SECONDS)
        return process

    @staticmethod
    def stop(process: subprocess.Popen[bytes]) -> int | None:
        """Ctrl-C, to make and all it started; the exit code, or None when it had to be killed."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            return process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
            return None


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    folder = tmp_path / "clone"
    folder.mkdir()
    for name in LINKED:
        (folder / name).symlink_to(ROOT / name)
    shell = Shell(folder, Ports())
    try:
        yield shell
    finally:
        for process, log in shell.background:
            Shell.stop(process)
            print(
                f"--- {log.name}\n{log.read_text(errors='replace')[-10_000:]}"
            )  # shown when the test failed


def test_the_readme_quick_start_works_as_written(shell: Shell, tmp_path: Path) -> None:
    stack_command = block("stack").strip()
    assert stack_command == "WEBHOOKS_RETRY_SCHEDULE=0,2,5 make dev"
    stack = shell.start(stack_command, tmp_path / "stack.log", "ready: ")
    setup, receiver_command = block("receiver").rstrip("\n").rsplit("\n", 1)
    shell.run(setup)
    receiver_log = tmp_path / "receiver.log"
    receiver = shell.start(receiver_command, receiver_log, "receiver on ")

    delivered = shell.run(block("deliver"))
    assert re.search(r"^active ", delivered, re.MULTILINE), delivered
    assert re.search(r"\b10 attempts: \['succeeded'\]", delivered), delivered
    assert receiver_log.read_text().count("(signature ok)") == 10

    # "Stop the receiver (Ctrl-C in terminal 2)", then, in terminal 3 (where HOOK was set), the next block.
    Shell.stop(receiver)
    terminal_3 = block("deliver").splitlines()[0] + "\n"
    dead = shell.run(block("dead-letter"), prelude=terminal_3)
    assert "failed retrying retrying" in dead.splitlines(), dead
    assert "DeliveryDLQ: 1 message(s)" in dead.splitlines(), dead

    # "Start the receiver again", then replay: the click arrives, signed.
    again = tmp_path / "receiver-again.log"
    shell.start(receiver_command, again, "receiver on ")
    assert json.loads(shell.run(block("replay"), prelude=terminal_3)) == {"replayed": 1}
    eventually(
        "the replayed click reaches the receiver", lambda: "(signature ok)" in again.read_text() or None, 20
    )
    assert Shell.stop(stack) is not None, "make dev did not stop on Ctrl-C"
