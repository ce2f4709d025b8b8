"""Running generated code inside the build process: import path and environment, scoped."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


def importable(src: Path) -> None:
    """Make the generated package importable (once; the path stays for the whole build)."""
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
