"""Writes the API's OpenAPI document (generated from the handler's routes and models) to docs/openapi.json."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "docs" / "openapi.json"


def generate() -> str:
    sys.path.insert(0, str(ROOT / "layers" / "shared"))
    # The handler reads its settings at import; any values do for rendering the document.
    for name in (
        "HOOKS_TABLE",
        "DELIVERIES_TABLE",
        "INGEST_QUEUE_URL",
        "DELIVERY_QUEUE_URL",
        "DELIVERY_DLQ_URL",
    ):
        os.environ.setdefault(name, "unused")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    spec = importlib.util.spec_from_file_location("api_app", ROOT / "functions" / "api" / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.dumps(json.loads(module.openapi_document()), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    DOCUMENT.write_text(generate())
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
