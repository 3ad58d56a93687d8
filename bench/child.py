"""Run by `bench.memory_import` in a fresh interpreter (`python -I -S -B bench/child.py ...`; the
benchmark imports it only for its path and FLOOR): loads one function's handler module as Lambda
does (its folder, the layer and a site of the runtime's packages on the path; the environment the
template gives it) and reports, as one JSON line on the original stdout:

- `import_ms`: the cold import of the handler module (boto3, pydantic, Powertools, webhooks) and the
  lookup of its handler (`app:lambda_handler` unless told otherwise), or of
  what the optional further arguments name instead, each `module` (`import module`),
  `module:Name,Name` (`from module import Name, Name`) or the path of a `.py` file (run as a
  script), all in one timing: `boto3` alone, or bench/floor_imports.py (the floor the handlers
  stand on);
- with `import-after-floor`: bench/floor_imports.py runs first, untimed, then `import_ms` is what the
  handler's import adds to that floor (what boto3 is used for at import, such as creating clients,
  stays in);
- with `batch`: runs the handler (the last `module:Name` named) once on the Lambda SQS event read
  from stdin and adds its peak RSS.

Everything the handler itself writes to stdout (log lines, metrics) goes to /dev/null.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import uuid
from typing import Any

# os.path rather than pathlib: nothing the handlers import may be imported here before the timing.
FLOOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor_imports.py")


class _Context:
    def __init__(self, name: str, memory_mb: int) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


def _rss_mb() -> float:
    """Peak RSS of this process image. Not ru_maxrss: Linux carries the forking parent's high-water
    mark across exec into it (the benchmark's own ~130 MB, moto included); VmHWM starts afresh."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run_script(path: str) -> None:
    # Not runpy: what it imports would then be imported before the timing of every figure.
    with open(path) as source:
        code = compile(source.read(), path, "exec")
    exec(code, {"__name__": "__bench__", "__file__": path})


def main(argv: list[str]) -> None:
    mode, code_dir, layer_dir, site_dir = argv[:4]
    imports = argv[4:] or ["app:lambda_handler"]
    event: Any = json.load(sys.stdin) if mode == "batch" else None
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.path[:0] = [code_dir, layer_dir, site_dir]
    if mode == "import-after-floor":
        _run_script(FLOOR)

    started = time.perf_counter()
    for spec in imports:
        if spec.endswith(".py"):
            _run_script(spec)
            continue
        name, _, names = spec.partition(":")
        module = importlib.import_module(name)
        for attribute in filter(None, names.split(",")):
            # As `from name import attribute` does (pydantic's names are lazy); a handler is looked up
            # by the name the template gives it.
            handler = getattr(module, attribute)
    result: dict[str, Any] = {
        "import_ms": round((time.perf_counter() - started) * 1000, 1),
        "rss_after_import_mb": _rss_mb(),
        "modules": len(sys.modules),
    }
    if mode == "batch":
        context = _Context(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench"), 512)
        started = time.perf_counter()
        answer = handler(event, context)
        result.update(
            records=len(event["Records"]),
            batch_s=round(time.perf_counter() - started, 3),
            failed_records=len(answer.get("batchItemFailures", [])),
            event_bytes=len(json.dumps(event)),
            peak_rss_mb=_rss_mb(),
        )
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out.write(json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
