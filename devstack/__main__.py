"""`python -m devstack` (`make dev`): the whole stack locally, in the foreground until Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path

# Where Lambda finds the shared layer (/opt/python), the local stack finds it here.
_LAYER = str(Path(__file__).resolve().parent.parent / "layers" / "shared")
if _LAYER not in sys.path:
    sys.path.insert(0, _LAYER)

from devstack.server import main  # noqa: E402 (needs the layer on the path)

if __name__ == "__main__":
    sys.exit(main())
