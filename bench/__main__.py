"""`python -m bench [scenario ...]`: runs the scenarios, prints one JSON line each, then the table."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

from bench import FAKE_AWS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SCENARIOS = ("fast_receiver", "slow_receivers", "fanout", "cost", "memory_import", "returned_mail", "flood")
# A hard stop for the whole run: tracebacks of every thread, then exit, should anything hang.
HARD_LIMIT_SECONDS = 600


def prepare_environment() -> None:
    """Fake credentials (everything is moto), the layer on the path, and the functions' global
    environment from the template (Powertools' service and log level) before any handler code is
    imported: its loggers read them once, at import, as on Lambda."""
    for path in (str(ROOT), str(ROOT / "layers" / "shared")):
        if path not in sys.path:
            sys.path.insert(0, path)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS)
    from devstack.template import load_template

    variables = load_template().get("Globals", {}).get("Function", {}).get("Environment", {})
    for name, value in variables.get("Variables", {}).items():
        if isinstance(value, str | int | float):
            os.environ[name] = str(value)


def main(argv: list[str]) -> int:
    wanted = argv or list(SCENARIOS)
    unknown = [name for name in wanted if name not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
        return 2
    faulthandler.dump_traceback_later(HARD_LIMIT_SECONDS, exit=True)
    prepare_environment()
    from bench.harness import LOGS

    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    rows: list[list[str]] = []
    errors = 0
    for name in SCENARIOS:
        if name not in wanted:
            continue
        module = import_module(f"bench.{name}")
        began = time.monotonic()
        load_before = os.getloadavg()[0]
        try:
            # The handlers write logs and metrics to stdout, as on Lambda: counted, not shown.
            with contextlib.redirect_stdout(LOGS):
                result = module.run(results)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            result = {"scenario": name, "error": f"{type(exc).__name__}: {exc}", "meets_target": False}
            errors += 1
        result["seconds"] = round(time.monotonic() - began, 1)
        # Other work on the machine skews every timing: the 1-minute load average before and after.
        result["load_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        results[name] = result
        print(json.dumps(result, separators=(",", ":")), flush=True)
        rows.append(module.row(result) if "error" not in result else [name, result["error"], "", "ERROR"])
    _report(results, rows, time.monotonic() - started)
    faulthandler.cancel_dump_traceback_later()
    return 1 if errors else 0


def _report(results: dict[str, dict[str, Any]], rows: list[list[str]], seconds: float) -> None:
    from bench import calc

    table = calc.markdown_table(rows, ["scenario", "measured", "target", "met"])
    missed = [name for name, r in results.items() if not r.get("meets_target")]
    print()
    print(table)
    print()
    if missed:
        print(
            f"TARGETS MISSED: {', '.join(missed)} (see the JSON lines above; a miss is reported, not failed)"
        )
    else:
        print("All targets met.")
    notes = [n for r in results.values() for n in r.get("notes", [])]
    for note in notes:
        print(f"- {note}")
    loads = [x for r in results.values() for x in r.get("load_1m", [])]
    busy = (
        f"; 1-minute load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs" if loads else ""
    )
    print(f"({seconds:.0f} s{busy})")
    if set(results) != set(SCENARIOS) or any("error" in r for r in results.values()):
        return  # a partial or broken run does not overwrite the published figures
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        "# Benchmark results",
        "",
        f"`make bench` on {machine}, {when}{busy}; AWS is moto (in its own process where the delivery "
        "path is timed), receivers are on 127.0.0.1. "
        "Timings move with the machine's load; the counts (calls, units, cost) do not.",
        "",
        table,
        "",
        *[f"- {note}" for note in notes],
        "",
    ]
    RESULTS.write_text("\n".join(text))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
