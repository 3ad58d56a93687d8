"""The layer `sam build` produces (layers/shared/Makefile): arm64 wheels for python3.13, and every
module shipped with bytecode compiled from exactly its source, so no cold start compiles anything.

`make test` builds first and sets REQUIRE_SAM_BUILD, so there a missing or stale build fails; a bare
`pytest` skips these when the layer was never built, or built from older sources.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / ".aws-sam" / "build" / "SharedLayer" / "python"
SOURCE = ROOT / "layers" / "shared" / "webhooks"
# The pyc header: magic (4 bytes), flags (4), then for hash-based files the source hash (8).
HASH_BASED, CHECK_SOURCE = 0b01, 0b10


def _sources(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.py")}


@pytest.fixture(scope="module")
def layer() -> Path:
    required = bool(os.environ.get("REQUIRE_SAM_BUILD"))
    if not BUILT.is_dir():
        if required:
            pytest.fail(f"{BUILT} is missing: `make sam-build` did not build the layer")
        pytest.skip("the layer has not been built (make sam-build)")
    if not required and _sources(BUILT / "webhooks") != _sources(SOURCE):
        pytest.skip("the layer was built from older sources (make sam-build)")
    return BUILT


def _compiled(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_the_layer_holds_the_webhooks_package_as_it_is_in_the_repository(layer: Path) -> None:
    assert _sources(layer / "webhooks") == _sources(SOURCE)


def test_every_module_of_the_layer_has_unchecked_bytecode_of_its_own_source(layer: Path) -> None:
    sources = sorted(layer.rglob("*.py"))
    assert len(sources) > 100  # pydantic, Powertools and the rest, not only our package
    for source in sources:
        header = _compiled(source).read_bytes()[:16]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        flags = int.from_bytes(header[4:8], "little")
        assert flags == HASH_BASED, f"{source}: flags {flags:#b}, not unchecked-hash"
        assert header[8:16] == importlib.util.source_hash(source.read_bytes()), source


def test_the_compiled_extensions_are_for_lambda_arm64_python313(layer: Path) -> None:
    extensions = list(layer.rglob("*.so"))
    assert extensions  # pydantic_core
    for extension in extensions:
        assert extension.name.endswith(".cpython-313-aarch64-linux-gnu.so"), extension
        assert extension.read_bytes()[:4] == b"\x7fELF"
        assert extension.read_bytes()[18:20] == (183).to_bytes(2, "little"), extension  # EM_AARCH64
