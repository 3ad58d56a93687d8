"""Peak RSS of the delivery handler at the largest batch size, and the cold import time of every
handler module, each in a fresh interpreter (bench/child.py) that sees only what Lambda would: the
function's folder, the layer's code, and a site of the runtime's boto3 plus the layer's requirements
(symlinked from the venv, dependencies included), not the dev tools of the venv (awscrt, pyOpenSSL
and the like would add import time and memory that Lambda does not have). AWS is moto's server in
this process, reached over 127.0.0.1 (`AWS_ENDPOINT_URL`), so moto's own memory is not counted;
receivers are in another process. Also timed, not judged: boto3 alone; the floor, what the
handlers stand on before any code of ours (boto3, Powertools' Logger and Metrics, pydantic with one
model class: bench/floor_imports.py); and each handler's import in an interpreter that had run the
floor first, untimed (`above_floor_ms`): what our own code and the rest of what it imports add.
"""

from __future__ import annotations

import compileall
import contextlib
import importlib.metadata
import json
import logging
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer
from packaging.requirements import Requirement

from bench import FAKE_AWS, calc, child
from bench.harness import (
    ACCOUNT,
    OVERRIDES,
    ROOT,
    delivery_event,
    memory_mb,
    new_hook,
    sample_events,
    sample_payloads,
)
from bench.receivers import ReceiverProcess
from devstack.template import Stack

CHILD = Path(child.__file__).resolve()
LAYER = ROOT / "layers" / "shared"
# The largest batch the template allows (DeliveryBatchSize's MaxValue), at most this many.
MAX_BATCH = 1000
RECEIVERS = 100  # hooks, each on a receiver port of its own
IMPORT_REPEATS = 5
RSS_TARGET_MB = 150
# What a handler may add to the floor it stands on (issue 11: judged above the floor this machine
# measures, not by an absolute figure the floor alone exceeds here); the API, with its resolver and
# validation, has more to import.
ABOVE_FLOOR_TARGET_MS = 40
ABOVE_FLOOR_TARGET_MS_BY_HANDLER = {"functions/api/app.py": 100}
CHILD_TIMEOUT = 120
# What the handlers can import on Lambda: the python3.13 runtime's boto3, and the layer's requirements.
RUNTIME_PACKAGES = ("boto3",)
# The floor (not judged): what the handlers stand on of those, run as a script by bench/child.py.
FLOOR_SCRIPT = Path(child.FLOOR)
FLOOR_TEXT = "bench/floor_imports.py: boto3, Powertools' Logger and Metrics, pydantic with one model class"


def _requirements() -> list[str]:
    lines = (LAYER / "requirements.txt").read_text().splitlines()
    return [
        re.split(r"[ <>=!~;\[]", line.strip(), maxsplit=1)[0] for line in lines if line.strip()[:1].isalnum()
    ]


def _closure(names: list[str]) -> list[importlib.metadata.Distribution]:
    """The distributions `names` need, with their dependencies (extras left out)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        found[key] = importlib.metadata.distribution(name)
        for requirement in map(Requirement, found[key].requires or []):
            # Only what this interpreter installs: no extras, no `python_version < "3.9"` back-ports.
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return list(found.values())


@contextlib.contextmanager
def lambda_site(layer_bytecode: bool = True) -> Iterator[tuple[Path, list[str]]]:
    """A temporary directory of symlinks to the top-level modules of those distributions. Without
    `layer_bytecode`, the layer's own distributions (not the runtime's boto3 and what it needs) are
    copies without any bytecode, as `BuildMethod: python3.13` would ship them."""
    site = Path(tempfile.mkdtemp(prefix="bench-lambda-site-"))
    cache = site / "__pycache__"
    cache.mkdir()
    names = []
    runtime = {dist.metadata["Name"] for dist in _closure(list(RUNTIME_PACKAGES))}
    try:
        for dist in _closure([*RUNTIME_PACKAGES, *_requirements()]):
            names.append(f"{dist.metadata['Name']}=={dist.version}")
            strip = not layer_bytecode and dist.metadata["Name"] not in runtime
            for top in {f.parts[0] for f in dist.files or [] if len(f.parts) >= 1}:
                source = Path(str(dist.locate_file(top)))
                if (
                    top.endswith((".dist-info", ".data"))
                    or top in ("..", "__pycache__")
                    or not source.exists()
                ):
                    continue
                if strip:
                    if source.is_dir():
                        shutil.copytree(source, site / top, ignore=shutil.ignore_patterns("__pycache__"))
                    else:
                        shutil.copy2(source, site / top)
                    continue
                (site / top).symlink_to(source)
                if top.endswith(".py"):  # a single-module distribution: its .pyc too
                    for compiled in (source.parent / "__pycache__").glob(f"{top[:-3]}.*.pyc"):
                        (cache / compiled.name).symlink_to(compiled)
        yield site, sorted(names)
    finally:
        shutil.rmtree(site, ignore_errors=True)


@contextlib.contextmanager
def lambda_code(stack: Stack, bytecode: bool = True) -> Iterator[Path]:
    """The functions' folders and the layer's code as `sam build` ships them (a root of the same
    layout as the repository's): copied without any `__pycache__` a test run left behind, then the
    layer compiled to unchecked-hash bytecode as layers/shared/Makefile does; the functions' app.py
    files stay sources, as SAM's python builder ships them."""
    root = Path(tempfile.mkdtemp(prefix="bench-lambda-code-"))
    try:
        for folder in {LAYER, *(function.code_dir for function in stack.functions().values())}:
            shutil.copytree(
                folder, root / folder.relative_to(ROOT), ignore=shutil.ignore_patterns("__pycache__")
            )
        layer = root / LAYER.relative_to(ROOT) / "webhooks"
        if bytecode and not compileall.compile_dir(
            layer, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        ):
            raise RuntimeError("the layer's code did not compile")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_child(
    mode: str,
    stack: Stack,
    logical_id: str,
    endpoint: str,
    site: Path,
    code: Path,
    event: Any = None,
    imports: Sequence[str] = (),
) -> dict[str, Any]:
    """bench/child.py in a fresh interpreter, as `logical_id` would run on Lambda; `imports` default
    to the function's handler (`app:lambda_handler`: the module, and the name the template gives)."""
    function = stack.functions()[logical_id]
    module, _, name = function.handler.rpartition(".")
    memory = memory_mb(stack, logical_id)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        **FAKE_AWS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        **function.environment,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",
            str(CHILD),
            mode,
            str(code / function.code_dir.relative_to(ROOT)),
            str(code / LAYER.relative_to(ROOT)),
            str(site),
            *(imports or [f"{module}:{name}"]),
        ],
        input=json.dumps(event) if event is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{logical_id} {mode} failed: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def run(previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        with (
            ReceiverProcess(ports=RECEIVERS) as receivers,
            lambda_site() as (site, packages),
            lambda_site(layer_bytecode=False) as (sources_site, _),
            contextlib.ExitStack() as cleanup,
        ):
            return _run(f"http://{host}:{port}", receivers, (site, sources_site), packages, cleanup)
    finally:
        server.stop()


def _run(
    endpoint: str,
    receivers: ReceiverProcess,
    sites: tuple[Path, Path],
    packages: list[str],
    cleanup: contextlib.ExitStack,
) -> dict[str, Any]:
    site, sources_site = sites
    session = boto3.Session(region_name="us-east-1")
    stack = Stack.from_template(name="webhooks-bench-mem", overrides=OVERRIDES)
    stack.create(session, endpoint_url=endpoint)
    types = [e["type"] for e in sample_events()]
    hooks = [new_hook(receivers.url(i), events=types) for i in range(RECEIVERS)]
    table = session.resource("dynamodb", endpoint_url=endpoint).Table(stack.physical["HooksTable"]["Ref"])
    with table.batch_writer() as batch:
        for hook in hooks:
            batch.put_item(Item=hook.to_item())
    largest = int(stack.template["Parameters"]["DeliveryBatchSize"].get("MaxValue", MAX_BATCH))
    batch_size = min(largest, MAX_BATCH)
    event = delivery_event(stack.physical["DeliveryQueue"]["Ref"], hooks, sample_payloads(), batch_size)
    code = cleanup.enter_context(lambda_code(stack))
    sources_code = cleanup.enter_context(lambda_code(stack, bytecode=False))

    served_before = receivers.served()
    batch_run = run_child("batch", stack, "DeliverFunction", endpoint, site, code, event)
    served = receivers.served() - served_before

    # Rounds, each timing every figure once in turn, so that the machine's drift (shared cores) falls
    # on all of them alike.
    functions = sorted(stack.functions())
    runs: dict[str, list[float]] = {}

    def timed(key: str, mode: str, logical_id: str, where: tuple[Path, Path], *imports: str) -> None:
        figures = run_child(mode, stack, logical_id, endpoint, *where, imports=imports)
        runs.setdefault(key, []).append(figures["import_ms"])

    for _ in range(IMPORT_REPEATS):
        # For scale: boto3 alone, which every handler imports; not judged: the floor.
        timed("boto3", "import", "DeliverFunction", (site, code), "boto3")
        timed("floor", "import", "DeliverFunction", (site, code), str(FLOOR_SCRIPT))
        for logical_id in functions:
            timed(logical_id, "import", logical_id, (site, code))
            # Not judged: the same import in an interpreter that had run the floor first (untimed).
            timed(f"{logical_id} after floor", "import-after-floor", logical_id, (site, code))
            # Not judged: the layer as `BuildMethod: python3.13` ships it, sources only.
            timed(f"{logical_id} sources", "import", logical_id, (sources_site, sources_code))

    imports: dict[str, dict[str, Any]] = {}
    for logical_id in functions:
        times = runs[logical_id]
        imports[str(stack.functions()[logical_id].code_dir.relative_to(ROOT) / "app.py")] = {
            "median_ms": calc.median(times),
            "max_ms": max(times),
            "runs_ms": times,
            "above_floor_ms": calc.median(runs[f"{logical_id} after floor"]),
            "runs_ms_above_floor": runs[f"{logical_id} after floor"],
            "layer_sources_only_ms": calc.median(runs[f"{logical_id} sources"]),
            "runs_ms_layer_sources_only": runs[f"{logical_id} sources"],
        }
    slowest = max(v["median_ms"] for v in imports.values())
    boto3_ms = calc.median(runs["boto3"])
    floor_ms = calc.median(runs["floor"])
    rss_ok = (
        batch_run["peak_rss_mb"] <= RSS_TARGET_MB
        and batch_run["failed_records"] == 0
        and served == batch_size
    )
    return {
        "scenario": "memory_import",
        "batch_records": batch_size,
        "template_max_batch_size": largest,
        "hooks": RECEIVERS,
        "event_bytes": batch_run["event_bytes"],
        "peak_rss_mb": batch_run["peak_rss_mb"],
        "rss_after_import_mb": batch_run["rss_after_import_mb"],
        "batch_s": batch_run["batch_s"],
        "failed_records": batch_run["failed_records"],
        "receiver_served": served,
        "import_ms": imports,
        "slowest_import_median_ms": slowest,
        "boto3_alone_import_ms": boto3_ms,
        "floor_import_ms": floor_ms,
        "floor_imports": FLOOR_TEXT,
        "above_floor_ms": (
            "judged: per handler, its import in a fresh interpreter that had run the floor "
            f"({FLOOR_TEXT}) first, untimed: what the handler's own code and whatever else it imports "
            "add to what every handler but the authorizer stands on (the authorizer needs no pydantic: "
            "it stands on less). Measured directly rather than as a difference of two noisy figures; "
            "whatever a handler does with boto3 at import (creating clients) stays in"
        ),
        "slowest_above_floor_ms": max(v["above_floor_ms"] for v in imports.values()),
        "importable": packages,
        "measured": (
            "a fresh `python -I -S -B` per figure, seeing only the function, the layer and the site above; "
            f"peak RSS = VmHWM after functions/deliver/app.py handled one event of {batch_size} records (the "
            f"sample events cycled, {RECEIVERS} hooks on {RECEIVERS} receiver ports, account {ACCOUNT}); "
            "import = time around importing app.py with the function's template environment, median of "
            f"{IMPORT_REPEATS} fresh interpreters, one per round (each round times every handler and "
            "figure once in turn); the code as `sam build` ships it: the layer with "
            "unchecked-hash bytecode (layers/shared/Makefile), the functions' app.py as sources"
        ),
        "ru_maxrss_mb_not_used": batch_run.get("ru_maxrss_mb"),
        "target": f"peak RSS <= {RSS_TARGET_MB} MB; above the floor <= {ABOVE_FLOOR_TARGET_MS} ms per "
        f"handler ({', '.join(f'{k} <= {v}' for k, v in ABOVE_FLOOR_TARGET_MS_BY_HANDLER.items())})",
        "above_floor_missed": above_floor_missed(imports),
        "meets_target": rss_ok and not above_floor_missed(imports),
    }


def above_floor_target(handler: str) -> float:
    return ABOVE_FLOOR_TARGET_MS_BY_HANDLER.get(handler, ABOVE_FLOOR_TARGET_MS)


def above_floor_missed(imports: dict[str, Any]) -> list[str]:
    """The handlers that add more to the floor than they may."""
    return sorted(name for name, v in imports.items() if v["above_floor_ms"] > above_floor_target(name))


def row(r: dict[str, Any]) -> list[str]:
    imports = ", ".join(
        f"{Path(name).parent.name} {v['median_ms']:.0f}" for name, v in r["import_ms"].items()
    )
    above = ", ".join(
        f"{Path(name).parent.name} {v['above_floor_ms']:+.0f}" for name, v in r["import_ms"].items()
    )
    sources = ", ".join(
        f"{Path(name).parent.name} {v['layer_sources_only_ms']:.0f}" for name, v in r["import_ms"].items()
    )
    figure = (
        f"peak RSS {r['peak_rss_mb']} MB for {r['batch_records']} records "
        f"({r['rss_after_import_mb']} MB after import); cold import ms (median of {IMPORT_REPEATS}): "
        f"{imports} (not judged); boto3 alone {r['boto3_alone_import_ms']:.0f} ms, the floor (boto3 + "
        f"Powertools Logger, Metrics + pydantic with one model class, bench/floor_imports.py) "
        f"{r['floor_import_ms']:.0f} ms; judged, what each handler adds to it (above_floor_ms: imported "
        f"after the floor) {above}; the same imports with the layer "
        f"shipped as sources only (SAM's python3.13 build method, before layers/shared/Makefile): {sources}"
    )
    rss = "yes" if r["peak_rss_mb"] <= RSS_TARGET_MB else "NO"
    missed = r.get("above_floor_missed") or []
    imported = "yes" if not missed else "NO (" + ", ".join(Path(name).parent.name for name in missed) + ")"
    met = "yes" if r["meets_target"] else f"RSS {rss}, import {imported}"
    api = ABOVE_FLOOR_TARGET_MS_BY_HANDLER["functions/api/app.py"]
    target = f"<= {RSS_TARGET_MB} MB; above the floor <= {ABOVE_FLOOR_TARGET_MS} ms, the API <= {api} ms"
    return ["memory_import", figure, target, met]
