"""Where the packaged templates are (cheap to import: used while doit loads tasks)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def templates_root() -> Path:
    return Path(str(importlib.resources.files("autocoder.templates")))
