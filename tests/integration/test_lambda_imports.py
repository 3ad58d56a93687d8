"""Every handler loads as Lambda loads it: a fresh interpreter with the function's folder, the layer's
code (compiled as layers/shared/Makefile compiles it) and only the python3.13 runtime's boto3 and the
layer's requirements with what they need, none of the venv's dev tools (requests, moto, pytest...).
A module the code imports but the layer does not list fails here, not at the first cold start; so
does a handler name in the template that the module does not define, or a setting the template
does not give. The same children time the imports in `make bench` (bench/memory_import.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import OVERRIDES
from bench.memory_import import lambda_code, lambda_site, run_child
from devstack.template import Stack

STACK = Stack.from_template(name="webhooks-imports", overrides=OVERRIDES)
# Nothing is called at import; an endpoint that answers nothing makes sure of it.
NO_AWS = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def lambda_like() -> Iterator[tuple[Path, Path]]:
    with lambda_site() as (site, _), lambda_code(STACK) as code:
        yield site, code


@pytest.mark.parametrize("logical_id", sorted(STACK.functions()))
def test_the_handler_loads_with_only_the_runtime_and_the_layers_requirements(
    lambda_like: tuple[Path, Path], logical_id: str
) -> None:
    site, code = lambda_like
    # Raises with the child's traceback if the import or the lookup of the template's handler fails.
    run_child("import", STACK, logical_id, NO_AWS, site, code)


def test_a_module_outside_the_layers_requirements_is_not_importable_there(
    lambda_like: tuple[Path, Path],
) -> None:
    site, code = lambda_like
    with pytest.raises(RuntimeError, match="No module named 'requests'"):
        run_child("import", STACK, "DeliverFunction", NO_AWS, site, code, imports=("requests",))
