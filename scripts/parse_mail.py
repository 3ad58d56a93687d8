"""make parse-mail FILES="a.eml b.eml": one JSON line per file, {"file": <path as given>, "events": [...]},
the events the service would emit for it (no AWS, no stack).

Without a stack there is no secret to check a return path with: `id` is the Message-ID of the returned
copy when the message carries one (else "unknown"), `envelope` the first address the headers say it
was delivered to. A file that cannot be read gives {"file", "error"} and the exit status 1."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "layers" / "shared"))

from webhooks.returned_mail.intake import events_for  # noqa: E402
from webhooks.returned_mail.parser import parse  # noqa: E402
from webhooks.returned_mail.service import envelope_candidates  # noqa: E402


def line_for(name: str) -> tuple[dict[str, object], bool]:
    try:
        raw = Path(name).read_bytes()
    except OSError as exc:
        return {"file": name, "error": exc.strerror or str(exc)}, False
    report = parse(raw)
    envelope = next(iter(envelope_candidates(raw)), "")
    message_id = (report.original_message_id or "unknown").strip("<>")[:255] or "unknown"
    return {
        "file": name,
        "events": events_for(raw, message_id=message_id, envelope=envelope, report=report),
    }, True


def main(argv: list[str]) -> int:
    status = 0
    for name in argv:
        line, ok = line_for(name)
        status = status if ok else 1
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
