"""`make parse-mail`: one JSON line per file, in the order given, with the events the service emits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.test_returned_mail_parser import SAMPLES

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "parse_mail.py"


def test_one_line_per_file_with_its_events_and_an_error_for_an_unreadable_one() -> None:
    files = [str(SAMPLES / "rhost-aol-03.eml"), "missing.eml", str(SAMPLES / "arf-25.eml")]

    done = subprocess.run([sys.executable, str(SCRIPT), *files], capture_output=True, text=True, check=False)

    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1
    assert [line["file"] for line in lines] == files
    assert [e["type"] for e in lines[0]["events"]] == ["bounce", "failure", "failure"]
    assert [(e["recipient"], e["code"], e["extended"]) for e in lines[0]["events"][1:]] == [
        ("sabineko@example.jp", 550, "5.2.2"),
        ("mikeneko@example.jp", 550, "5.1.1"),
    ]
    assert lines[1] == {"file": "missing.eml", "error": "No such file or directory"}
    assert [e["type"] for e in lines[2]["events"]] == ["abuse"]
